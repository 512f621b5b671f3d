#!/usr/bin/env bash
# Remove everything the lab created: containers pmoves-lab-*, their model and image-store volumes,
# the seed labs' stand-in images, the pmoves-lab network, the lab's artifacts, caches and generated
# secrets (.cache/lab). Safe to run twice. One lab runs at a time, so LAB_INVENTORY does not matter.
#   scripts/lab-down.sh           everything but the download cache .cache/lab-wheelhouse (the PyPI
#                                 wheels the offline nodes install from; like the base image, it is
#                                 kept so the next `make lab` does not download 150 MB again)
#   scripts/lab-down.sh --purge   that cache too
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
log() { printf 'lab-down: %s\n' "$*"; }

if command -v podman >/dev/null; then
  mapfile -t containers < <(podman ps -a --filter label=io.pmoves.lab=1 --format '{{.Names}}'; \
                            podman ps -a --filter name='^pmoves-lab-' --format '{{.Names}}')
  mapfile -t containers < <(printf '%s\n' "${containers[@]}" | grep -E '^pmoves-lab' | sort -u)
  if ((${#containers[@]})); then
    log "remove containers ${containers[*]}"
    podman rm -f -t 5 "${containers[@]}" >/dev/null
  fi
  mapfile -t volumes < <(podman volume ls --format '{{.Name}}' | grep -E '^pmoves-lab' || true)
  if ((${#volumes[@]})); then
    log "remove volumes ${volumes[*]}"
    podman volume rm -f "${volumes[@]}" >/dev/null
  fi
  # The seed labs' stand-in images (tagged with seed image names, label io.pmoves.lab.standin=1).
  mapfile -t standins < <(podman images --filter label=io.pmoves.lab.standin=1 --format '{{.Id}}' | sort -u)
  if ((${#standins[@]})); then
    log "remove ${#standins[@]} stand-in images"
    podman rmi -f "${standins[@]}" >/dev/null 2>&1 || true
  fi
  if podman network exists pmoves-lab; then
    log "remove network pmoves-lab"
    podman network rm -f pmoves-lab >/dev/null
  fi
fi

# Files the lab wrote (the artifacts dir itself goes only when nothing else is in it).
rm -rf .cache/lab
rm -f .cache/facts/lab-* .cache/facts/s1_lab-* artifacts/lab.json artifacts/lab-api-key artifacts/lab-nats-observer artifacts/plan.json artifacts/plan.md \
      artifacts/plan.html artifacts/report.html artifacts/report.json
rmdir artifacts 2>/dev/null || true
if [[ ${1:-} == --purge ]]; then
  rm -rf .cache/lab-wheelhouse
fi
log "done"
