#!/usr/bin/env bash
# Builds the gantry/gantry image from a locally built `gantry` binary, with no registry:
# the Dockerfile starts from `scratch` and the build context holds everything the image
# needs, gathered here on the host:
#   /bin/gantry            the binary
#   /lib..., /lib64/...    the shared libraries it links (from `ldd`: libc, libstdc++,
#                          libgcc_s, libm, the dynamic loader, ...)
#   /bin/busybox + applets Debian's static busybox: `wget` for health checks, `sh`
#   /etc/passwd, group     root and the unprivileged user gantry (10001)
#   /etc/nsswitch.conf     host names from /etc/hosts, then DNS (Docker's resolver)
#   /tmp, /var/lib/gantry  scratch space and the data dir (owned by gantry)
# The same image runs `gantry server` and `gantry agent`.
#
# Usage: deploy/image/build.sh [--binary PATH] [--tag IMAGE] [--if-missing]
#   --binary PATH  the binary to package (default: $CARGO_TARGET_DIR/release/gantry,
#                  where CARGO_TARGET_DIR defaults to ~/.cache/gantry/target)
#   --tag IMAGE    the image name (default: gantry/gantry:latest)
#   --if-missing   do nothing when IMAGE already holds an image of this very binary
#                  (compared by the sha256 recorded in the image's labels)
# BUSYBOX=path picks another static busybox than Debian's /bin/busybox.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/gantry/target}"
binary="$target_dir/release/gantry"
tag="gantry/gantry:latest"
if_missing=false

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --if-missing) if_missing=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$binary" ]; then
  echo "error: no gantry binary at $binary: build it first (cargo build --release -p gantry) or pass --binary" >&2
  exit 1
fi
sha="$(sha256sum "$binary" | cut -d' ' -f1)"
label_sha="io.gantry.binary-sha256"

if $if_missing; then
  have="$(docker image inspect -f "{{index .Config.Labels \"$label_sha\"}}" "$tag" 2>/dev/null || true)"
  if [ "$have" = "$sha" ]; then
    echo "$tag is present (binary sha256 ${sha:0:12})"
    exit 0
  fi
fi

# Debian's busybox-static; a dynamically linked busybox would not run in an empty image.
BUSYBOX="${BUSYBOX:-/bin/busybox}"
if [ "$BUSYBOX" = /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then
  echo "error: a static busybox is needed: apt-get install busybox-static (or set BUSYBOX=path)" >&2
  exit 1
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root"/{bin,etc,tmp} "$ctx/data"
chmod 1777 "$root/tmp"

cp "$binary" "$root/bin/gantry"
chmod 0755 "$root/bin/gantry"

# Every shared library the binary links, at the path the dynamic loader looks for it
# (symlinks resolved: the image holds the files themselves).
libs="$(ldd "$binary" 2>&1 || true)"
if grep -q 'not found' <<<"$libs"; then
  echo "error: $binary links libraries this machine lacks:" >&2
  grep 'not found' <<<"$libs" >&2
  exit 1
fi
for lib in $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$libs"); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
gantry:x:10001:10001:gantry:/var/lib/gantry:/bin/false
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
gantry:x:10001:
EOF
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF

previous="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
cp "$here/Dockerfile" "$ctx/Dockerfile"
version="$("$binary" --version 2>/dev/null | awk '{print $NF}' || true)"
if ! built="$(docker build --quiet \
  --label "$label_sha=$sha" \
  --label "org.opencontainers.image.title=gantry" \
  --label "org.opencontainers.image.version=${version:-unknown}" \
  --tag "$tag" "$ctx" 2>&1)"; then
  echo "error: docker build failed: $built" >&2
  exit 1
fi

# The image must run on its own: the binary finds its libraries, busybox is there.
if ! out="$(docker run --rm --network none "$tag" --version 2>&1 | head -n 1; exit "${PIPESTATUS[0]}")"; then
  echo "error: $tag was built but \`gantry --version\` fails in it: $out" >&2
  exit 1
fi
if ! docker run --rm --network none --entrypoint /bin/wget "$tag" --help >/dev/null 2>&1; then
  echo "error: $tag was built but has no working /bin/wget" >&2
  exit 1
fi
# The image this one replaces under $tag, unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "built $tag: $out, binary sha256 ${sha:0:12}, $(docker image inspect -f '{{.Size}}' "$tag") bytes"
