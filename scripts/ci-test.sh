#!/usr/bin/env bash
# `make test`: two streams side by side on a 2-core machine, each line prefixed with its stream:
#   [checks]      make unit lint sanity molecule-fleet, then the base and monitoring role scenarios
#   [containers]  make molecule-roles (every other role's scenario), then lab-check (the pmoves seed fleet's lab
#                 from scratch, its checks, a rerun changed=0, lab-down)
# The split keeps the two streams about as long as each other (measured per target, printed below: the seed
# lab is the longest single target). They share no container names (the lab's pytest tests run in lab-check,
# not in unit; the fleet scenario's containers are named pmoves-fleet-*). Exits non-zero when either stream
# fails and names it; prints each target's and stream's wall time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
start=$(date +%s)
stream() {  # name "target [VAR=value]"...: one make per target, each one's wall time printed (where CI time goes)
  local name=$1; shift
  local t0=$SECONDS rc=0 target t1
  for target in "$@"; do
    t1=$SECONDS
    # shellcheck disable=SC2086  # "target VAR=value" splits into make's arguments on purpose
    make --no-print-directory $target 2>&1 | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    echo "[$name] make $target finished rc=$rc in $(( SECONDS - t1 )) s"
    (( rc == 0 )) || break
  done
  echo "[$name] make $* finished rc=$rc in $(( SECONDS - t0 )) s"
  return "$rc"
}
SPLIT=base,monitoring  # role scenarios that run in the checks stream (measured: keeps the two streams even)
stream checks unit lint sanity molecule-fleet "molecule-roles MOLECULE_ROLES=$SPLIT" & checks=$!
stream containers "molecule-roles MOLECULE_SKIP=$SPLIT" lab-check & containers=$!
rc=0
wait "$checks" || { echo "make test: the checks stream (unit lint sanity molecule-fleet, $SPLIT scenarios) failed"; rc=1; }
wait "$containers" || { echo "make test: the containers stream (other role scenarios, lab-check) failed"; rc=1; }
(( rc == 0 )) && echo "make test: all passed in $(( $(date +%s) - start )) s"
exit "$rc"
