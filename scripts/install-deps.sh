#!/usr/bin/env bash
# Installs, with apt, the system packages building and testing coroner needs, skipping those
# already installed. Idempotent. Must run as root.
#
#   containerd runc          the runtime the end-to-end tests run privately (never the system one)
#   protobuf-compiler        protoc, run by the build scripts of containerd-client and k8s-cri
#   clang libelf-dev zlib1g-dev pkg-config bpftool
#                            the eBPF recorder's build (clang for *.bpf.c, libbpf's link deps)
#   busybox-static           the root filesystem of the test images (no registry needed)
#   tar                      builds those images (deterministic layer tars)
#
# It does not start a containerd: service starts are refused while apt runs (policy-rc.d), and
# the tests only ever talk to the private daemons they start themselves.
set -euo pipefail

PACKAGES=(containerd runc protobuf-compiler clang libelf-dev zlib1g-dev pkg-config bpftool busybox-static tar)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root (the tests run containerd and runc): sudo $0" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: apt-get not found; install by hand: ${PACKAGES[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps.sh: all packages present"
    exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Refuse service starts during the install (exit 101 = "action forbidden"), unless the machine
# already has its own policy, which we then leave alone.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

for tool in containerd ctr runc protoc clang bpftool busybox tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-deps.sh: $tool still not on PATH after installing" >&2
        exit 1
    fi
done
echo "install-deps.sh: done"
