#!/usr/bin/env bash
# `make test`: two streams side by side on a 2-core machine, each line prefixed with its stream:
#   [checks]      make unit lint sanity molecule-fleet   (pytest, ruff, ansible-lint, ansible-test, then
#                                                        the fleet scenario: site.yml on three containers)
#   [containers]  make molecule-roles lab-check          (each role's scenario, then the lab end to end)
# The two streams take about as long as each other (measured: the role scenarios and the lab alone
# took twice the checks). They share no container names (the lab's pytest tests run in lab-check,
# not in unit; the fleet scenario's containers are named pmoves-fleet-*). Exits non-zero
# when either stream fails and names it; prints each stream's wall time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
start=$(date +%s)
stream() {  # name targets...: one make per target, each one's wall time printed (where CI time goes)
  local name=$1; shift
  local t0=$SECONDS rc=0 target t1
  for target in "$@"; do
    t1=$SECONDS
    make --no-print-directory "$target" 2>&1 | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    echo "[$name] make $target finished rc=$rc in $(( SECONDS - t1 )) s"
    (( rc == 0 )) || break
  done
  echo "[$name] make $* finished rc=$rc in $(( SECONDS - t0 )) s"
  return "$rc"
}
stream checks unit lint sanity molecule-fleet & checks=$!
stream containers molecule-roles lab-check & containers=$!
rc=0
wait "$checks" || { echo "make test: the checks stream (unit lint sanity molecule-fleet) failed"; rc=1; }
wait "$containers" || { echo "make test: the containers stream (molecule-roles lab-check) failed"; rc=1; }
(( rc == 0 )) && echo "make test: all passed in $(( $(date +%s) - start )) s"
exit "$rc"
