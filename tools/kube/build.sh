#!/usr/bin/env bash
# Builds the commands named on the command line into OUT.
#   tools/kube/build.sh OUT kube-apiserver kube-controller-manager kubectl
# Kubernetes commands come from this module (k8s.io/kubernetes), stamped with their release
# version (an unstamped apiserver reports v0.0.0 and kubectl refuses it); etcd from
# tools/etcd. The node's other parts are pinned below and built from the Go module proxy:
# containerd, ctr, containerd-shim-runc-v2, runc, the CNI plugins (into OUT/cni) and
# coredns; rhime-pause and rhime-hello are the programs of the two images built locally
# (tools/pause, tools/hello).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"; shift

containerd_version=v2.4.2
runc_version=v1.5.3
cni_version=v1.10.0
coredns_version=v1.15.0

version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")"
minor="${version#v1.}"; minor="${minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# `go install module/cmd@version` into a folder: these modules build as published.
go_install() {
  local bin="$1"; shift
  mkdir -p "$bin"
  (cd "$here" && GOBIN="$bin" go install -trimpath "$@")
}

for cmd in "$@"; do
  case "$cmd" in
    etcd)
      (cd "$here/../etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .) ;;
    containerd | ctr | containerd-shim-runc-v2)
      # no cgo: leaves out the btrfs snapshotter (overlayfs is what the node uses)
      CGO_ENABLED=0 go_install "$out" \
        -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
        "github.com/containerd/containerd/v2/cmd/$cmd@$containerd_version" ;;
    runc)
      # cgo for its nsenter and libseccomp (Debian's libseccomp-dev)
      CGO_ENABLED=1 go_install "$out" -tags seccomp -ldflags "-s -w" \
        "github.com/opencontainers/runc@$runc_version" ;;
    bridge | loopback)
      CGO_ENABLED=0 go_install "$out/cni" -ldflags "-s -w" \
        "github.com/containernetworking/plugins/plugins/main/$cmd@$cni_version" ;;
    host-local)
      CGO_ENABLED=0 go_install "$out/cni" -ldflags "-s -w" \
        "github.com/containernetworking/plugins/plugins/ipam/$cmd@$cni_version" ;;
    coredns)
      CGO_ENABLED=0 go_install "$out" -ldflags "-s -w" "github.com/coredns/coredns@$coredns_version" ;;
    rhime-pause | rhime-hello)
      # static: the image holds this one file and nothing else
      (cd "$here/../${cmd#rhime-}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/$cmd" .) ;;
    *)
      (cd "$here" && go build -trimpath -ldflags "-s -w $stamp" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd") ;;
  esac
done
