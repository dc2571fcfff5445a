#!/usr/bin/env bash
# Static checks of what ships to a cluster, run by tests/deploy.rs (so by scripts/test.sh and CI):
#   - hadolint on the Containerfile;
#   - every kustomization under deploy/ (the base, each overlay) rendered with `kubectl kustomize`
#     and validated with kubernetes-validate --strict against each Kubernetes minor version we
#     support (unknown fields fail). Kinds it has no schema for (the PodMonitor and PrometheusRule CRDs) only warn;
#     tests/deploy.rs checks the PodMonitor against the DaemonSet instead.
#
#   scripts/lint-deploy.sh          KUBE_VERSIONS="1.27.0 ... 1.33.0" to change the range
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSIONS=${KUBE_VERSIONS:-"1.27.0 1.28.0 1.29.0 1.30.0 1.31.0 1.32.0 1.33.0"}
for tool in hadolint kubernetes-validate kubectl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "lint-deploy.sh: $tool not found (scripts/install-deps.sh installs it)" >&2
        exit 1
    fi
done

hadolint Containerfile
echo "lint-deploy.sh: hadolint Containerfile: ok"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files=()
for root in deploy deploy/overlays/*; do
    out="$work/$(echo "$root" | tr / _).yaml"
    kubectl kustomize "$root" >"$out"
    files+=("$out")
done
# One run per version over every rendering (each run loads its schemas once). The PodMonitor and
# the PrometheusRule have no schema here: their "Couldn't find schema" warnings are expected and not
# shown.
failed=0
for v in $KUBE_VERSIONS; do
    kubernetes-validate --strict --quiet -k "$v" "${files[@]}" >"$work/report" 2>&1 || failed=1
    grep -v -e "Couldn't find schema for kind PodMonitor with api version monitoring.coreos.com/v1" \
        -e "Couldn't find schema for kind PrometheusRule with api version monitoring.coreos.com/v1" "$work/report" || true
done
if [ "$failed" = 1 ]; then
    echo "lint-deploy.sh: kubernetes-validate failed (above)" >&2
    exit 1
fi
echo "lint-deploy.sh: ${#files[@]} renderings of deploy/ valid for Kubernetes ${KUBE_VERSIONS// /, }"
