# shellcheck shell=sh
# TEST DOUBLE helper (sourced by the fake commands in this directory; never used in production).
# Captured outputs live in <fixture dir>/<tool>/: PMOVES_FAKE_HARDWARE_DIR if set, else
# $PMOVES_HARDWARE_SYSROOT/.fixture (hardware_facts exports the sysroot to the commands it runs).
# No <tool>/ directory there means "this machine has no such command": exit 127 like a shell.
fixture_dir() {
    base="${PMOVES_FAKE_HARDWARE_DIR:-${PMOVES_HARDWARE_SYSROOT:-/}/.fixture}"
    dir="$base/$1"
    if [ ! -d "$dir" ]; then
        echo "$1: command not found (test double: no $dir)" >&2
        exit 127
    fi
    printf '%s\n' "$dir"
}
fixture_rc() {
    if [ -f "$1/rc" ]; then tr -d '[:space:]' <"$1/rc"; else echo 0; fi
}
