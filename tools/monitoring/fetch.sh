#!/usr/bin/env bash
# Fetches what spec.monitoring is tested with into OUT/crds: the Prometheus Operator's
# PodMonitor and PrometheusRule CRDs, from its Go module (a 4 MB download, nothing built).
#   tools/monitoring/fetch.sh OUT
set -euo pipefail
out="$(mkdir -p "$1/crds" && cd "$1" && pwd)"

prometheus_operator_version=v0.88.0

dir="$(GOFLAGS=-mod=mod go mod download -json \
  "github.com/prometheus-operator/prometheus-operator@$prometheus_operator_version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
for kind in podmonitors prometheusrules; do
  install -m 0644 "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$out/crds/"
done
