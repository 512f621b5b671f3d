#!/bin/busybox sh
# shellcheck shell=dash
# TEST DOUBLE (pmoves lab): stands in for a seed service's image. scripts/lab-up.sh builds it from the
# host's busybox and tags it with the seed's image name, so the compose file keeps the seed's image
# and command: the command arrives here as arguments and is ignored. It serves every container port
# of the services using the image ($STANDIN_PORTS) with busybox httpd: `/` and each health path
# answer 200 ("pmoves stand-in <image>"). SIGTERM stops it at once.
trap 'exit 0' TERM INT
for port in $STANDIN_PORTS; do
  /bin/busybox httpd -p "$port" -h /www || echo "stand-in: cannot serve port $port" >&2
done
echo "stand-in for $STANDIN_IMAGE (ignored command: $*), serving ports: ${STANDIN_PORTS:-none}"
while :; do /bin/busybox sleep 3600 & wait $!; done
