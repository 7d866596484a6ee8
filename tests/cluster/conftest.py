"""A real single-node Kubernetes (`rhime.runtime.cluster`): root, built binaries, and a host
whose networking it may change while it runs; skipped where any of these is missing.

`host_state()` captures what the cluster touches on the host (iptables and nftables, links,
routes, mounts, sysctls, host folders, cgroups), so a test can check `down()` restored it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rhime.runtime import cluster
from rhime.runtime.servers import REPO

_OURS = re.compile(r"kube|cni|rhime", re.IGNORECASE)


def _out(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def _rules(tool: str) -> dict[str, list[str]]:
    """`TOOL-save` without counters and comments: every rule and user chain, and separately
    the lines naming Kubernetes, CNI or Rhime."""
    lines = [
        re.sub(r"\[\d+:\d+\]", "", line).strip()
        for line in _out(f"{tool}-save").splitlines()
        if line and not line.startswith("#")
    ]
    return {
        "rules": sorted(line for line in lines if line.startswith("-A ")),
        "ours": sorted(line for line in lines if _OURS.search(line)),
    }


# Scratch folders where other programs on a shared machine mount their own things (image
# builds, other runtimes) while the test runs: their mounts are not the cluster's.
_SCRATCH = ("/tmp/", f"{REPO}/.rhime/")


def host_state(directory: Path) -> dict[str, Any]:
    """The host as the cluster in `directory` may change it: every mount, but those in
    scratch folders other than the cluster's own."""
    sysctls = {name: cluster.read_sysctl(name) for name in cluster.SYSCTLS}
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods"))
    return {
        "iptables": _rules("iptables"),
        "ip6tables": _rules("ip6tables"),
        "nft tables": sorted(_out("nft", "list", "tables").splitlines())
        if shutil.which("nft")
        else [],
        "ip link": sorted(line.split()[0] for line in _out("ip", "-br", "link").splitlines()),
        "ip route": sorted(_out("ip", "route").splitlines()),
        "ip -6 route": sorted(_out("ip", "-6", "route").splitlines()),
        "mounts": sorted(
            line
            for line in Path("/proc/mounts").read_text().splitlines()
            if not line.split()[1].startswith(_SCRATCH)
            or line.split()[1].startswith(f"{directory}/")
        ),
        "sysctls": sysctls,
        "host paths": sorted(p for p in cluster.HOST_PATHS if os.path.lexists(p)),
        "cgroups": cgroups,
    }


@pytest.fixture
def snapshot(cluster_dir: Path) -> Callable[[], dict[str, Any]]:
    return lambda: host_state(cluster_dir)


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A short folder (containerd's socket paths are limited) removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a cluster needs root")
    if not cluster.available():
        pytest.fail("the cluster's binaries are not built: run scripts/bootstrap.sh --cluster")
    if shutil.which("iptables") is None:
        pytest.fail("iptables is not installed: run scripts/bootstrap.sh --cluster")
    directory = Path(tempfile.mkdtemp(prefix="rhime-cluster-", dir="/tmp"))
    try:
        yield directory
    finally:
        cluster.Cluster(directory).down()  # a no-op after a clean down
        if not cluster.mounts_under(directory):
            shutil.rmtree(directory, ignore_errors=True)
