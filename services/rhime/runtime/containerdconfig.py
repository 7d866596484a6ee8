"""containerd's configuration for the cluster's one node: its TOML, and the CNI bridge
network its pods join."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# TOML basic strings and arrays read JSON's: every value below is filled in with json.dumps.
_TEMPLATE = """\
version = 4
root = {root}
state = {state}
imports = []
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.blockfile",
]

[plugins.'io.containerd.server.v1.grpc']
  address = {socket}

[plugins.'io.containerd.server.v1.ttrpc']
  address = {ttrpc_socket}

[plugins.'io.containerd.server.v1.debug']
  address = ""

[plugins.'io.containerd.shim.v1.manager']
  socket_dir = {shim_sockets}

[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = {image_verifiers}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = {sandbox}

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = {registries}

[plugins.'io.containerd.cri.v1.runtime']
  # root here lacks CAP_SYS_RESOURCE: never lower a process's OOM score below ours
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = {shim}

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = {runc}
  Root = {runc_root}
  SystemdCgroup = false

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = {cni_bin_dirs}
  conf_dir = {cni_conf_dir}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def network(*, name: str, bridge: str, subnet: str, gateway: str, ipam_dir: Path) -> dict[str, Any]:
    """The CNI network list: one bridge, addresses from `subnet`, state kept in `ipam_dir`."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def config(
    *,
    root: Path,
    socket: Path,
    shim_sockets: Path,
    runc_root: Path,
    bin_dir: Path,
    cni_conf_dir: Path,
    sandbox: str,
) -> str:
    """containerd's config.toml: everything under `root`, runc and the CNI plugins from
    `bin_dir`, the pod sandbox image `sandbox` pinned (imported, never pulled)."""
    values: dict[str, object] = {
        "root": str(root / "root"),
        "state": str(root / "state"),
        "socket": str(socket),
        "ttrpc_socket": str(socket) + ".ttrpc",
        "shim_sockets": str(shim_sockets),
        "image_verifiers": str(root / "image-verifiers"),
        "sandbox": sandbox,
        "registries": str(root / "certs.d"),
        "shim": str(bin_dir / "containerd-shim-runc-v2"),
        "runc": str(bin_dir / "runc"),
        "runc_root": str(runc_root),
        "cni_bin_dirs": [str(bin_dir / "cni")],
        "cni_conf_dir": str(cni_conf_dir),
    }
    return _TEMPLATE.format(**{key: json.dumps(value) for key, value in values.items()})


def refuse_pulls(root: Path, *, registry: str) -> None:
    """Point every registry at `registry`, a closed port on loopback: a pull fails at once,
    without even looking the registry's name up (images are imported, never pulled)."""
    registries = root / "certs.d" / "_default"
    registries.mkdir(parents=True)
    (registries / "hosts.toml").write_text(f'server = "http://{registry}"\n')
