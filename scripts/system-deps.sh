#!/usr/bin/env bash
# Install the system packages the tests and the lab need on a Debian/Ubuntu controller, and
# the container engine settings molecule needs. Idempotent and quick when all is present.
#   podman + runc + debootstrap  molecule scenarios and the lab (locally built base image)
#   netavark + aardvark-dns      podman's network backend WITH container DNS: lab nodes reach each
#                                other by host name (the CNI backend Debian falls back to has none)
#   podman-compose               compose role integration tests
#   nats-server, redis-server    mesh and gateway integration tests (real servers on loopback)
#   wireguard-tools, nftables    wireguard role tests (network namespaces)
set -euo pipefail

packages=(
  podman runc conmon netavark aardvark-dns containernetworking-plugins slirp4netns fuse-overlayfs uidmap catatonit iptables
  debootstrap podman-compose nats-server redis-server wireguard-tools nftables iproute2
  wireguard-go iputils-ping busybox zstd git make curl ca-certificates python3-venv shellcheck
)

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rootful podman inside this sandbox: runc, ulimits the kernel lets us set, and netavark (container
# DNS through aardvark-dns) instead of CNI without a DNS plugin.
conf=/etc/containers/containers.conf
if [[ ! -s $conf ]] || ! grep -q 'runtime *= *"runc"' "$conf" || ! grep -q 'network_backend *= *"netavark"' "$conf"; then
  echo "system-deps: writing $conf"
  $sudo mkdir -p /etc/containers
  $sudo tee "$conf" >/dev/null <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[network]
network_backend = "netavark"

[engine]
runtime = "runc"
CONF
fi

# The shared-by-nothing servers we test against must not run as system services on the
# controller (tests start their own on loopback ports).
for svc in redis-server nats-server; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
# Check what the tests and the lab rely on, with a message that says what to do.
problems=()
for cmd in podman runc debootstrap nats-server redis-server wg nft ip zstd shellcheck; do
  command -v "$cmd" >/dev/null || problems+=("$cmd is not on PATH")
done
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
if [[ $backend != netavark ]]; then
  problems+=("podman's network backend is '$backend', not netavark: lab containers could not resolve each other's names (a host that used CNI before needs 'podman system reset')")
fi
[[ -x /usr/lib/podman/aardvark-dns ]] || problems+=("aardvark-dns (container DNS) is missing from /usr/lib/podman")
if ((${#problems[@]})); then
  printf 'system-deps: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "system-deps: ok"
