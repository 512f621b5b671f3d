#!/usr/bin/env bash
# Regenerate every hash-locked requirements file of the repository (what `make locks` runs).
#
#   scripts/lock.sh             keep the pins already in each lock where they still resolve
#   scripts/lock.sh --upgrade   take the newest releases the .in files allow (make locks UPGRADE=1)
#
# Each lock is COMPLETE: every dependency, extras' dependencies included, pinned with == and
# --hash, resolved once for a whole range of Python versions (uv's universal resolution writes
# environment markers where versions differ). So every install site runs
#   pip install --no-deps --require-hashes -r LOCK
# and pip never resolves anything at install time (today's index cannot change what a fresh
# machine gets). The lock tool, uv, is itself pinned with hashes (scripts/lock-tool.txt) and
# goes into a throw-away venv, never into .venv. Needs python3 (3.8+) and the package index.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-python3}
UPGRADE=()
case ${1:-} in
  --upgrade) UPGRADE=(--upgrade) ;;
  "") ;;
  *) echo "usage: $0 [--upgrade]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r scripts/lock-tool.txt
UV=$tmp/venv/bin/uv
UV_VERSION=$("$UV" --version | cut -d' ' -f2)
# No interpreter downloads (--python-version only sets the resolution's lower bound), no user/system uv.toml.
export UV_PYTHON_DOWNLOADS=never

lock() {  # input output min-python title
  local input=$1 output=$2 python=$3 title=$4 name
  name=$(basename "$output")
  if [[ -f $output ]]; then cp "$output" "$tmp/out.txt"; else : >"$tmp/out.txt"; fi
  "$UV" pip compile --no-config --quiet --universal --python-version "$python" --generate-hashes \
    --no-strip-extras --no-header "${UPGRADE[@]}" -o "$tmp/out.txt" "$input"
  {
    printf '# %s\n' "$title"
    printf '# COMPLETE and hash-locked: every dependency (extras included) is pinned with == and --hash, for\n'
    printf '# CPython >= %s (one universal resolution; environment markers where versions differ).\n' "$python"
    printf '# Install it only with:  pip install --no-deps --require-hashes -r %s\n' "$name"
    # shellcheck disable=SC2016  # the backquotes are literal text
    printf '# Generated from %s by `make locks` (scripts/lock.sh, uv %s pip compile --universal\n' "$input" "$UV_VERSION"
    printf '# --python-version %s --generate-hashes --no-strip-extras). Do not edit by hand: change the input, rerun.\n' "$python"
    cat "$tmp/out.txt"
  } >"$output"
  printf 'lock: %-46s %3d packages (CPython >= %s)\n' "$output" "$(grep -cE '^[A-Za-z0-9]' "$output")" "$python"
}

# The mesh agent's venv on every node: JetPack 5 (Ubuntu 20.04) has Python 3.8.
lock roles/mesh/files/requirements-agent.in roles/mesh/files/requirements-agent.txt 3.8 \
  "Mesh agent (roles/mesh/files/pmoves_mesh_agent.py) venv on every node."
# The gateway's LiteLLM venv: Ubuntu 22.04 (3.10), Debian 12 (3.11), Ubuntu 24.04 (3.12), Debian 13 (3.13).
lock roles/gateway/files/requirements-litellm.in roles/gateway/files/requirements-litellm.txt 3.10 \
  "LiteLLM proxy of the fleet gateway (roles/gateway), installed into its venv on the gateway node."
# The controller, tests and CI (.venv): ansible-core 2.19 needs Python 3.11+.
lock requirements.in requirements.txt 3.11 \
  "Controller, tests and CI: what \`make venv\` installs into .venv (plus -e ./cli, built with no deps)."
# pip itself, installed into .venv before the lock (same pin as in requirements.in).
grep -E '^pip==' requirements.in >"$tmp/pip.in"
lock "$tmp/pip.in" requirements-pip.txt 3.11 \
  "pip for .venv (\`make venv\` installs it first); its pin lives in requirements.in."
sed -i "s|^# Generated from $tmp/pip.in |# Generated from requirements.in's pip pin |; s|-r $tmp/pip.in|-r requirements.in (pip pin)|" requirements-pip.txt
# The lock tool itself.
lock scripts/lock-tool.in scripts/lock-tool.txt 3.8 \
  "The lock tool (uv) that scripts/lock.sh installs into a throw-away venv."
