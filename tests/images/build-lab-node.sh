#!/usr/bin/env bash
# The seed labs' node image (contract 4b): the molecule/lab base image plus what a fleet node of the
# lab needs besides what the roles install: a compose engine for the stand-in services (podman +
# podman-compose, run nested in the privileged node container) and wireguard-go (the containers have
# no WireGuard kernel module). Built once from Debian's mirror, cached by recipe hash like build.sh.
#
#   tests/images/build-lab-node.sh            build if missing or if this recipe changed
#   tests/images/build-lab-node.sh --force    rebuild
set -euo pipefail

BASE=${PMOVES_LAB_BASE_IMAGE:-localhost/pmoves-molecule:bookworm-systemd}
IMAGE=${PMOVES_LAB_NODE_IMAGE:-localhost/pmoves-lab-node:bookworm-systemd}
PACKAGES="podman podman-compose netavark aardvark-dns iptables fuse-overlayfs wireguard-go wireguard-tools nftables"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
"$REPO/tests/images/build.sh" >/dev/null
base_id=$(podman image inspect --format '{{.Id}}' "$BASE")
recipe=$( { cat "$0"; echo "$base_id $PACKAGES"; } | sha256sum | cut -c1-16)
current=$(podman image inspect --format '{{ index .Labels "io.pmoves.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [[ "${1:-}" != "--force" && "$current" == "$recipe" ]]; then
  echo "lab node image $IMAGE is current (recipe $recipe)"
  exit 0
fi
name=pmoves-lab-build-$$
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
echo "building $IMAGE: $BASE + $PACKAGES"
# shellcheck disable=SC2086
podman run --name "$name" "$BASE" sh -ec "
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null
  rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
  # nested podman: cgroupfs (no systemd cgroup delegation needed), netavark bridges (no CNI plugins
  # installed), overlay storage on the node's volume /var/lib/containers
  mkdir -p /etc/containers
  printf '[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n[network]\nnetwork_backend = \"netavark\"\n' > /etc/containers/containers.conf
  rm -f /etc/cni/net.d/87-podman-bridge.conflist
  printf '[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\nrunroot = \"/run/containers/storage\"\n' > /etc/containers/storage.conf
"
podman commit -q --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL io.pmoves.recipe=$recipe" "$name" "$IMAGE" >/dev/null
echo "built $IMAGE (recipe $recipe)"
