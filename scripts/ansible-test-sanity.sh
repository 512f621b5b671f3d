#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, here and in CI.
#
# ansible-test wants the collection at .../ansible_collections/pmoves/fleet and a clean git
# tree, so the committed files plus the working tree's changes are copied there. Each sanity
# test runs in its own venv (--venv) with ansible-test's pinned requirements from PyPI.
# ansible-test bootstraps pip in those venvs with a get-pip script from a host this network
# cannot reach; the stand-in below bootstraps pip from the interpreter's own ensurepip instead.
#
# Runs:
#   1. every sanity test on the controller Python (PYTHON_VERSION, default 3.11; extra arguments
#      of this script go to this run only, e.g. `--test pep8`);
#   2. `--test compile --test import` on each node Python in PMOVES_SANITY_TARGET_PYTHONS
#      (default "3.8 3.13": the oldest node Python, JetPack 5's Ubuntu 20.04, and the newest we
#      support). Modules and module_utils run on the nodes, so they must byte-compile and import
#      there. ansible-test finds `python3.8` etc. on PATH; pyenv's interpreters are added to PATH
#      when the version is not there already. PMOVES_SANITY_TARGET_PYTHONS="" skips these runs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${PMOVES_SANITY_DIR:-/tmp/pmoves-sanity}
dest=$work/ansible_collections/pmoves/fleet
python=${PYTHON_VERSION:-3.11}
targets=${PMOVES_SANITY_TARGET_PYTHONS-3.8 3.13}

# ansible-test only warns and skips the shellcheck test when the program is missing: require it.
command -v shellcheck >/dev/null || { echo "ansible-test-sanity: shellcheck is missing (apt-get install shellcheck)" >&2; exit 2; }

# Put pythonX.Y on PATH for each node Python, from pyenv when the system has none; fail clearly otherwise.
# Only a pythonX.Y link goes on PATH (not pyenv's bin directory, whose python3 and pip would shadow ours).
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
links=$work/pythons
rm -rf "$links"
mkdir -p "$links"
PATH=$links:$PATH
for version in $targets; do
  # a pyenv shim is on PATH but fails unless that version is selected: run it to know
  "python$version" -c '' >/dev/null 2>&1 && continue
  found=$(find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$version.*/bin/python$version" 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $found ]]; then
    cat >&2 <<EOF
ansible-test-sanity: python$version is not on PATH nor under $pyenv_root/versions.
  The node-side code (modules, module_utils) is checked on every node Python in
  PMOVES_SANITY_TARGET_PYTHONS="$targets". Install it, e.g. \`pyenv install $version\`
  (or deadsnakes' python$version on Ubuntu), or skip these runs with PMOVES_SANITY_TARGET_PYTHONS="".
EOF
    exit 2
  fi
  ln -s "$found" "$links/python$version"
done
export PATH

cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
for version in 24_2 25_1 25_3; do
  cat > "$cache/get_pip_$version.py" <<'PY'
# Offline stand-in for get-pip.py: pip from ensurepip, then the requested packages.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PY
done

rm -rf "$dest"
mkdir -p "$dest"
(cd "$repo" && git ls-files -co --exclude-standard -z | grep -zv '^collections/' | xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@invalid commit -qm sanity

sanity() {
  local start=$SECONDS
  "$repo/.venv/bin/ansible-test" sanity --venv --requirements --color no "$@"
  echo "ansible-test-sanity: \`sanity $*\` passed in $((SECONDS - start)) s"
}

sanity --python "$python" "$@"
for version in $targets; do
  sanity --python "$version" --test compile --test import
done
