#!/usr/bin/env bash
# Builds etcd and the Kubernetes commands named on the command line into OUT, stamped with
# their release version (an unstamped apiserver reports v0.0.0 and kubectl refuses it).
#   tools/kube/build.sh OUT kube-apiserver kube-controller-manager kubectl
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"; shift

version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")"
minor="${version#v1.}"; minor="${minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

for cmd in "$@"; do
  if [ "$cmd" = etcd ]; then
    (cd "$here/../etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)
  else
    (cd "$here" && go build -trimpath -ldflags "-s -w $stamp" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  fi
done
