#!/usr/bin/env bash
# Build the molecule/lab base image once and cache it by tag.
#
#   tests/images/build.sh            build if missing or if this recipe changed
#   tests/images/build.sh --force    rebuild
#
# Docker Hub is not reachable, so the image is a debootstrap'ed Debian bookworm (minbase)
# with python3 (Ansible's target interpreter) and systemd as PID 1 for roles that manage
# services. One rootfs, two tags:
#   localhost/pmoves-molecule:bookworm          (run with any command)
#   localhost/pmoves-molecule:bookworm-systemd  (run with /sbin/init, --systemd=always)
# The image carries the sha256 of this recipe in the label io.pmoves.recipe; a changed
# recipe means a rebuild, an unchanged one means nothing to do (seconds).
set -euo pipefail

IMAGE=${PMOVES_BASE_IMAGE:-localhost/pmoves-molecule}
SUITE=${PMOVES_BASE_SUITE:-bookworm}
MIRROR=${PMOVES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-apt,systemd,systemd-sysv,dbus,ca-certificates,iproute2,procps,sudo,tar,gzip,zstd,curl,netbase
recipe=$( { cat "$0"; echo "$SUITE $MIRROR $PACKAGES"; } | sha256sum | cut -c1-16)

current=$(podman image inspect --format '{{ index .Labels "io.pmoves.recipe" }}' "$IMAGE:$SUITE-systemd" 2>/dev/null || true)
if [[ "${1:-}" != "--force" && "$current" == "$recipe" ]]; then
  echo "base image $IMAGE:$SUITE-systemd is current (recipe $recipe)"
  exit 0
fi

work=$(mktemp -d /var/tmp/pmoves-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "debootstrap $SUITE (minbase + $PACKAGES) into $work"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log"; exit 1; }

root=$work/rootfs
# Trim what a container never needs: apt lists (re-fetched by roles), docs, man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/var/cache/apt/*.bin
# systemd in a container: no getty on a console nobody reads, no udev/ time sync.
for unit in getty.target console-getty.service systemd-udevd.service systemd-timesyncd.service \
            systemd-udev-trigger.service systemd-remount-fs.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo "pmoves-molecule" > "$root/etc/hostname"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" > "$root/etc/apt/sources.list"

tar -C "$root" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change "LABEL io.pmoves.recipe=$recipe" \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$IMAGE:$SUITE-systemd" >/dev/null
podman tag "$IMAGE:$SUITE-systemd" "$IMAGE:$SUITE"
echo "built $IMAGE:$SUITE-systemd and $IMAGE:$SUITE (recipe $recipe)"
