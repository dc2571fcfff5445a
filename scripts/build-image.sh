#!/usr/bin/env bash
# Builds coroner's container image from the Containerfile with buildah (or podman), and
# optionally writes it as an OCI archive that `ctr images import`, `podman load`, `kind load
# image-archive` and `k3s ctr images import` take.
#
#   scripts/build-image.sh [--offline] [--tag REF] [--archive FILE] [--storage DIR]
#
#   --offline       no base image is pulled: scripts/build-static.sh builds the binary on this host
#                   (the same script the Containerfile's build stage runs) and the image is made
#                   from it (the Containerfile's `offline` target). Without it the build stage
#                   compiles inside docker.io/library/rust, which needs a registry.
#   --tag REF       image reference (default localhost/coroner:<version in Cargo.toml>, the name
#                   deploy/base/kustomization.yaml gives the DaemonSet)
#   --archive FILE  also write the image to FILE as an OCI archive
#   --storage DIR   keep images in a containers-storage of its own under DIR instead of the
#                   system's /var/lib/containers (the tests use target/coroner-image/storage)
#
# Needs root (or a rootless podman/buildah set-up) and buildah or podman (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
offline=0
tag="localhost/coroner:$version"
archive=""
storage=""
while [ $# -gt 0 ]; do
    case "$1" in
        --offline) offline=1 ;;
        --tag) tag=${2:?--tag needs a value}; shift ;;
        --archive) archive=${2:?--archive needs a value}; shift ;;
        --storage) storage=${2:?--storage needs a value}; shift ;;
        -h|--help) usage ;;
        *) echo "build-image.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done

if command -v buildah >/dev/null 2>&1; then
    tool=buildah
elif command -v podman >/dev/null 2>&1; then
    tool=podman
else
    echo "build-image.sh: neither buildah nor podman found (scripts/install-deps.sh installs buildah)" >&2
    exit 1
fi
store_args=()
if [ -n "$storage" ]; then
    mkdir -p "$storage"
    storage=$(cd "$storage" && pwd)
    store_args=(--root "$storage/root" --runroot "$storage/run" --storage-driver overlay)
fi

build_args=(--build-arg "VERSION=$version")
if [ "$offline" = 1 ]; then
    scripts/build-static.sh target/coroner-image/coroner
    build_args+=(--target offline)
fi

start=$(date +%s%N)
# OCI format: docker's v2s2 would drop nothing here, but OCI is what containerd and the archive
# below speak natively. The unused stages (the Rust build stage when offline) are skipped.
case $tool in
    buildah) buildah "${store_args[@]}" bud --format oci "${build_args[@]}" -f Containerfile -t "$tag" . ;;
    podman) podman "${store_args[@]}" build --format oci "${build_args[@]}" -f Containerfile -t "$tag" . ;;
esac

if [ -n "$archive" ]; then
    mkdir -p "$(dirname "$archive")"
    rm -f "$archive.tmp"
    case $tool in
        buildah) buildah "${store_args[@]}" push "$tag" "oci-archive:$archive.tmp:$tag" ;;
        podman) podman "${store_args[@]}" save --format oci-archive -o "$archive.tmp" "$tag" ;;
    esac
    mv "$archive.tmp" "$archive"
fi
# Our own storage only: drop the intermediate stage images each build leaves behind.
if [ -n "$storage" ]; then
    "$tool" "${store_args[@]}" rmi --prune >/dev/null 2>&1 || true
fi

ms=$((($(date +%s%N) - start) / 1000000))
echo "build-image.sh: $tag built with $tool in ${ms} ms${archive:+; archive $archive ($(du -h "$archive" | cut -f1))}"
