#!/usr/bin/env bash
# `make test`: two streams side by side on a 2-core machine, each line prefixed with its stream:
#   [checks]      make unit lint sanity        (mostly CPU: pytest, ruff, ansible-lint, ansible-test)
#   [containers]  make molecule lab-check      (mostly waiting on containers: apt, systemd, pulls)
# They share no container names (the lab's pytest tests run in lab-check, not in unit). Exits non-zero
# when either stream fails and names it; prints each stream's wall time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
start=$(date +%s)
stream() {  # name targets...
  local name=$1; shift
  local t0=$SECONDS rc
  make --no-print-directory "$@" 2>&1 | sed -u "s/^/[$name] /"
  rc=${PIPESTATUS[0]}
  echo "[$name] make $* finished rc=$rc in $(( SECONDS - t0 )) s"
  return "$rc"
}
stream checks unit lint sanity & checks=$!
stream containers molecule lab-check & containers=$!
rc=0
wait "$checks" || { echo "make test: the checks stream (unit lint sanity) failed"; rc=1; }
wait "$containers" || { echo "make test: the containers stream (molecule lab-check) failed"; rc=1; }
(( rc == 0 )) && echo "make test: all passed in $(( $(date +%s) - start )) s"
exit "$rc"
