#!/usr/bin/env bash
# Builds images/connect-supervisor/Containerfile with podman over a Debian base made here with
# mmdebstrap (JRE 17 headless, tini, the non-root user), and saves the image as an OCI archive.
# No registry is needed: every package comes from Debian's archive.
#
#   images/build.sh [--binary PATH] [--runtime DIR] [--tag TAG] [--output FILE]
#
#   --binary PATH   a connect-supervisor binary built outside (e.g. target/debug/connect-supervisor);
#                   it is stripped into the image and the Containerfile's Rust stage is skipped.
#                   Without it the Containerfile builds the release binary itself (needs
#                   --builder-image, a Rust image with cargo, in local storage).
#   --runtime DIR   the Connect runtime materialised by `connect-supervisor runtime fetch`
#                   (default .cache/connect-runtime; fetched with the binary when missing).
#   --tag TAG       image tag (default localhost/connect-supervisor:dev).
#   --output FILE   OCI archive (default target/images/connect-supervisor.oci.tar).
#   --builder-image IMAGE  the Rust build stage's base (without --binary).
#
# The mmdebstrap base is cached in $CONNECT_SUPERVISOR_IMAGE_CACHE (default
# /var/cache/connect-supervisor), keyed by its package list and Debian suite, so later builds on
# the same machine skip it; a fresh machine builds it (a few minutes, mostly downloads).
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=""
RUNTIME=".cache/connect-runtime"
TAG="localhost/connect-supervisor:dev"
OUTPUT="target/images/connect-supervisor.oci.tar"
BUILDER_IMAGE=""
CACHE="${CONNECT_SUPERVISOR_IMAGE_CACHE:-/var/cache/connect-supervisor}"
SUITE="bookworm"
PACKAGES="openjdk-17-jre-headless,tini,passwd,ca-certificates-java"
UID_GID=10001

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY="$2"; shift 2 ;;
    --runtime) RUNTIME="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    --builder-image) BUILDER_IMAGE="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "images/build.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "images/build.sh: $1 is not installed; install it with: apt-get install -y --no-install-recommends $2" >&2
    exit 69
  }
}
need podman "podman buildah crun runc fuse-overlayfs"
need mmdebstrap mmdebstrap

log() { printf '== %s\n' "$*" >&2; }

# Container limits podman may set here: its defaults (nofile and nproc 1048576) cannot be raised
# past this shell's hard limits without CAP_SYS_RESOURCE, which sandboxes and CI runners lack.
# crun refuses hybrid cgroup hosts (v1 controllers plus a unified mount): use runc there.
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
runtime=()
if [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null 2>&1; then
  runtime=(--runtime runc)
fi

# --- the base: Debian packages only, built once per package list -------------------------------
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$UID_GID" "v1" | sha256sum | cut -c1-16)
base_tar="$CACHE/base-$SUITE-$key.tar"
base_image="localhost/connect-supervisor-base:$SUITE-$key"
mkdir -p "$CACHE"
if [ ! -s "$base_tar" ]; then
  log "mmdebstrap $SUITE base ($PACKAGES) -> $base_tar"
  # Docs, man pages and locales are left out; man1 must exist for the JRE's alternatives.
  mmdebstrap --variant=apt --format=tar --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --setup-hook='mkdir -p "$1/usr/share/man/man1"' \
    --customize-hook="chroot \"\$1\" useradd --system --uid $UID_GID --user-group --home-dir /var/lib/connect-supervisor --no-create-home --shell /usr/sbin/nologin connect" \
    --customize-hook="install -d -o $UID_GID -g $UID_GID -m 0750 \"\$1/var/lib/connect-supervisor\"" \
    --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*' \
    "$SUITE" "$base_tar.tmp" "$sources"
  mv "$base_tar.tmp" "$base_tar"
else
  log "base cached: $base_tar"
fi
if ! podman image exists "$base_image"; then
  podman import --quiet "$base_tar" "$base_image" >/dev/null
fi

# --- the inputs: a prebuilt binary and runtime, or the Containerfile's own build stage --------
build_args=(--build-arg "BASE_IMAGE=$base_image")
dist=images/connect-supervisor/dist
rm -rf "$dist"
if [ -n "$BINARY" ]; then
  [ -x "$BINARY" ] || { echo "images/build.sh: --binary $BINARY is not an executable" >&2; exit 66; }
  if [ ! -f "$RUNTIME/.complete" ]; then
    log "runtime fetch -> $RUNTIME"
    "$BINARY" runtime fetch --source images/connect-runtime --dir "$RUNTIME"
  fi
  mkdir -p "$dist/bin"
  # Debug symbols stay out of the image (a debug build is mostly symbols).
  strip -o "$dist/bin/connect-supervisor" "$BINARY" 2>/dev/null || cp "$BINARY" "$dist/bin/connect-supervisor"
  cp -a "$RUNTIME" "$dist/connect-runtime"
  build_args+=(--build-arg INPUTS=prebuilt)
else
  [ -n "$BUILDER_IMAGE" ] && build_args+=(--build-arg "BUILDER_IMAGE=$BUILDER_IMAGE")
fi

log "podman build $TAG"
podman "${runtime[@]}" build --quiet --network host --pull=never "${ulimits[@]}" \
  -f images/connect-supervisor/Containerfile "${build_args[@]}" -t "$TAG" . >/dev/null
rm -rf "$dist"
# The inputs stage is only a carrier of files: drop its image.
podman image prune --force --filter label=dev.connect-supervisor.stage=inputs >/dev/null

mkdir -p "$(dirname "$OUTPUT")"
rm -f "$OUTPUT"
podman save --quiet --format oci-archive -o "$OUTPUT" "$TAG"
size=$(podman image inspect --format '{{.Size}}' "$TAG")
log "image $TAG: $((size / 1024 / 1024)) MiB; OCI archive $OUTPUT: $(( $(stat -c %s "$OUTPUT") / 1024 / 1024 )) MiB"
echo "$TAG"
