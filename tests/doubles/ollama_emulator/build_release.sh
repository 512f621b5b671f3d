#!/usr/bin/env bash
# Build release-style archives of the Ollama TEST DOUBLE (an API emulator, not Ollama).
#
#   tests/doubles/ollama_emulator/build_release.sh [VERSION] [OUTDIR] [FORMAT]
#     VERSION  version the fake binary reports ("ollama version is VERSION"), default 0.30.10
#     OUTDIR   where the archives go, default ./dist next to this script
#     FORMAT   tar.zst (current Ollama releases, default) or tgz (releases before zstd)
#
# Lays the archives out like the real release assets so the role installs the double through
# the same download + sha256sum.txt + unpack path a real release takes:
#   ollama-linux-{amd64,arm64}.FORMAT        bin/ollama + lib/ollama/ (the main bundle)
#   ollama-linux-arm64-jetpack{5,6}.FORMAT   lib/ollama/cuda_jetpack{5,6}/ (unpacked over the main bundle)
#   ollama-linux-amd64-rocm.FORMAT           lib/ollama/rocm/
#   sha256sum.txt                            "<sha256>  ./<asset>" lines, as `find . | xargs sha256sum` writes
# bin/ollama is a shell wrapper that runs lib/ollama/ollama_test_double.py with python3.
#
# OLLAMA_TEST_DOUBLE_BROKEN=1 in the environment builds a release that does not start: its `ollama serve`
# prints an error and exits 1 without listening (like a release whose runner libraries do not load), while
# `ollama --version` and the other verbs still work. The role's failed-upgrade rollback is tested with it
# (roles/ollama/molecule/default/verify_upgrade.yml).
set -euo pipefail

VERSION=${1:-0.30.10}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${2:-$here/dist}
FORMAT=${3:-tar.zst}
BROKEN=${OLLAMA_TEST_DOUBLE_BROKEN:-0}
case "$FORMAT" in tar.zst|tgz) ;; *) echo "FORMAT must be tar.zst or tgz" >&2; exit 2 ;; esac
if [[ "$FORMAT" == tar.zst ]] && ! command -v zstd >/dev/null; then
  echo "zstd is needed to build .tar.zst archives (apt-get install zstd)" >&2; exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

stage_main() {  # $1 = staging dir
  local broken_guard=""
  if [[ "$BROKEN" != 0 ]]; then
    # shellcheck disable=SC2016  # written into the wrapper as is: "$1" is the wrapper's argument
    broken_guard='# BROKEN on purpose (OLLAMA_TEST_DOUBLE_BROKEN=1): serve exits 1 and never listens.
if [ "$1" = serve ]; then echo "Error: test double built broken (OLLAMA_TEST_DOUBLE_BROKEN=1), not serving" >&2; exit 1; fi
'
  fi
  install -d "$1/bin" "$1/lib/ollama/cuda_v12" "$1/lib/ollama/cuda_v13" "$1/lib/ollama/vulkan"
  install -m 0644 "$here/ollama_test_double.py" "$1/lib/ollama/ollama_test_double.py"
  cat > "$1/bin/ollama" <<WRAPPER
#!/bin/sh
# OLLAMA TEST DOUBLE $VERSION: runs the pmoves.fleet Ollama API emulator, not Ollama.
here=\$(dirname "\$(readlink -f "\$0")")
${broken_guard}OLLAMA_TEST_DOUBLE_BAKED_VERSION=$VERSION exec python3 "\$here/../lib/ollama/ollama_test_double.py" "\$@"
WRAPPER
  chmod 0755 "$1/bin/ollama"
  for lib in cuda_v12 cuda_v13 vulkan; do
    echo "placeholder for the $lib runner libraries of the real release (test double)" > "$1/lib/ollama/$lib/TEST-DOUBLE.txt"
  done
}

stage_aux() {  # $1 = staging dir, $2 = lib subdir
  install -d "$1/lib/ollama/$2"
  echo "placeholder for the $2 libraries of the real release (test double)" > "$1/lib/ollama/$2/TEST-DOUBLE.txt"
}

pack() {  # $1 = staging dir, $2 = asset base name
  local target="$OUT/$2.$FORMAT"
  if [[ "$FORMAT" == tar.zst ]]; then
    tar -c -C "$1" --owner 0 --group 0 --sort=name --mtime=@0 . | zstd -q -19 -f -o "$target"
  else
    tar -c -C "$1" --owner 0 --group 0 --sort=name --mtime=@0 . | gzip -n -9 > "$target"
  fi
}

for arch in amd64 arm64; do
  stage_main "$work/main-$arch"
  pack "$work/main-$arch" "ollama-linux-$arch"
done
for jp in jetpack5 jetpack6; do
  stage_aux "$work/$jp" "cuda_$jp"
  pack "$work/$jp" "ollama-linux-arm64-$jp"
done
stage_aux "$work/rocm" rocm
pack "$work/rocm" "ollama-linux-amd64-rocm"

(cd "$OUT" && find . -maxdepth 1 -type f -name "ollama-linux-*.$FORMAT" | sort | xargs sha256sum > sha256sum.txt)
echo "built Ollama TEST DOUBLE $VERSION release ($FORMAT)$([[ "$BROKEN" != 0 ]] && echo ', BROKEN: serve exits 1,') in $OUT"
