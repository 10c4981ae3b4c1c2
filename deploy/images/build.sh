#!/usr/bin/env bash
# Builds the test image gantry/busybox:latest from scratch, with no registry: a root
# filesystem holding Debian's static busybox (httpd, sleep, sh, nc, wget, ...) and a small
# web root, imported into the local Docker engine. Tests, `gantry dev` and the examples use
# it; nothing here is ever pulled.
#
# Usage: deploy/images/build.sh [--if-missing] [--tag IMAGE]
#   --if-missing   do nothing when the image already exists
#   --tag IMAGE    another name than gantry/busybox:latest
set -euo pipefail

IMAGE="gantry/busybox:latest"
if_missing=false
while [ $# -gt 0 ]; do
  case "$1" in
    --if-missing) if_missing=true; shift ;;
    --tag) IMAGE="$2"; shift 2 ;;
    *) echo "error: unknown argument $1 (usage: $0 [--if-missing] [--tag IMAGE])" >&2; exit 2 ;;
  esac
done

if $if_missing && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE is present"
  exit 0
fi

# Debian's busybox-static; a dynamically linked busybox would not run in an empty image.
BUSYBOX="${BUSYBOX:-/bin/busybox}"
if ! dpkg -s busybox-static >/dev/null 2>&1 && [ "$BUSYBOX" = /bin/busybox ]; then
  echo "error: a static busybox is needed: apt-get install busybox-static (or set BUSYBOX=path)" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,tmp,www,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
echo 'hello from gantry/busybox' > "$root/www/index.html"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'WORKDIR /www' \
  --change 'CMD ["sh"]' \
  - "$IMAGE" >/dev/null
echo "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
