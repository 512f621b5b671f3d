#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, here and in CI.
#
# ansible-test wants the collection at .../ansible_collections/pmoves/fleet and a clean git
# tree, so the committed files plus the working tree's changes are copied there. Each sanity
# test runs in its own venv (--venv) with ansible-test's pinned requirements from PyPI.
# ansible-test bootstraps pip in those venvs with a get-pip script from a host this network
# cannot reach; the stand-in below bootstraps pip from the interpreter's own ensurepip instead.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${PMOVES_SANITY_DIR:-/tmp/pmoves-sanity}
dest=$work/ansible_collections/pmoves/fleet
python=${PYTHON_VERSION:-3.11}

# ansible-test only warns and skips the shellcheck test when the program is missing: require it.
command -v shellcheck >/dev/null || { echo "ansible-test-sanity: shellcheck is missing (apt-get install shellcheck)" >&2; exit 2; }

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
exec "$repo/.venv/bin/ansible-test" sanity --venv --requirements --python "$python" --color no "$@"
