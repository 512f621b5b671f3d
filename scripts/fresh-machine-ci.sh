#!/usr/bin/env bash
# Run .ci/run as CI does on a NEW machine, before you push: a fresh clone of the current branch in a
# temporary directory, none of this machine's project images (localhost/pmoves-*) or caches (the
# ansible-test venvs under ~/.ansible/test, the lab's wheelhouse), an empty pip cache, CI=true and no
# stdin. A plain `git clone . /tmp/x && bash .ci/run` still uses those and has hidden broken install
# steps before.
#   scripts/fresh-machine-ci.sh [--keep]      --keep: leave the temporary clone for inspection
# Prints the log path first, the wall time and the log's tail last; exits with .ci/run's status.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel) || exit 2
work=$(mktemp -d /tmp/pmoves-fresh-ci.XXXX)
echo "log: $work/ci.log"
git clone -q "$repo" "$work/main" || exit 2
# .ci/run expects ../shared beside the clone when the project is checked out that way.
[[ -d $repo/../shared ]] && cp -r "$repo/../shared" "$work/shared"
if command -v podman >/dev/null 2>&1; then
  podman ps -a --format '{{.Names}}' | grep -E '^pmoves-' | xargs -r podman rm -f -t 0 >/dev/null 2>&1
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/pmoves' | xargs -r podman rmi -f >/dev/null 2>&1
fi
rm -rf "$HOME/.ansible/test"
start=$(date +%s)
(cd "$work/main" && PIP_CACHE_DIR="$work/pip-cache" CI=true timeout 5400 bash .ci/run </dev/null >"$work/ci.log" 2>&1)
rc=$?
echo "rc=$rc seconds=$(( $(date +%s) - start ))"
tail -25 "$work/ci.log"
if [[ ${1:-} != --keep ]]; then
  (cd "$work/main" && scripts/lab-down.sh --purge >/dev/null 2>&1)
  rm -rf "$work/main" "$work/pip-cache"
fi
exit $rc
