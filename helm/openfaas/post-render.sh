#!/usr/bin/env bash
# Helm post-renderer that applies gateway-patch.yaml to the official OpenFaaS chart, so
# `helm upgrade` of the OpenFaaS release keeps the gateway pointed at Locus (Helm 3:
#   helm upgrade --install openfaas openfaas/openfaas -n openfaas \
#     --post-renderer helm/openfaas/post-render.sh
# Helm 4 takes post-renderers as plugins; wrap this script in one, or use the
# kustomization with `helm template` as its header says).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/openfaas.yaml"
cp "$here/gateway-patch.yaml" "$here/kustomization.yaml" "$work/"
kubectl kustomize "$work"
