"""The kubelet's configuration (a KubeletConfiguration) for the cluster's one node."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def kubelet_configuration(
    *,
    address: str,
    port: int,
    healthz_port: int,
    serving_cert: Path,
    serving_key: Path,
    client_ca: Path,
    runtime_socket: Path,
    cluster_dns: str,
    resolv_conf: Path,
    pod_logs: Path,
) -> dict[str, Any]:
    """Serving on `address`:`port` with `serving_cert`, trusting clients signed by
    `client_ca`, running pods through the containerd at `runtime_socket`."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        # this host: cgroup v1 (kubelet refuses it unless told), no systemd, maybe swap
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "clusterDNS": [cluster_dns],
        "clusterDomain": "cluster.local",
        "resolvConf": str(resolv_conf),
        "podLogsDir": str(pod_logs),
        "registerNode": True,
        # a test-sized node on a shared disk: evict late, never collect imported images
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "2s",
        "syncFrequency": "10s",
    }
