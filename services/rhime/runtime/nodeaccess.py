"""The API objects a cluster's node needs before its clients start: RBAC for CoreDNS, the
kubelet and the API server calling kubelets, and the kube-dns Service in front of the
CoreDNS that runs on the host."""

from __future__ import annotations

from typing import Any

RBAC = "/apis/rbac.authorization.k8s.io/v1"

COREDNS_ROLE: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "rhime:coredns"},
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["endpoints", "services", "pods", "namespaces"],
            "verbs": ["list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        },
    ],
}

_DNS_PORTS = [
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
]


def binding(*, name: str, role: str, kind: str, subject: str) -> dict[str, Any]:
    """A ClusterRoleBinding of `role` to one user or group."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role,
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }


def bindings() -> list[dict[str, Any]]:
    return [
        binding(name="rhime:coredns", role="rhime:coredns", kind="User", subject="rhime:coredns"),
        # the kubelet checks who calls it (logs, exec) with the API server's reviews
        binding(
            name="rhime:node-auth-delegator",
            role="system:auth-delegator",
            kind="Group",
            subject="system:nodes",
        ),
        # the API server calling kubelets
        binding(
            name="rhime:apiserver-kubelet",
            role="system:kubelet-api-admin",
            kind="User",
            subject="kube-apiserver-kubelet-client",
        ),
    ]


def dns_service(*, cluster_ip: str) -> dict[str, Any]:
    """kube-dns at `cluster_ip`, without a selector: its endpoints are `dns_endpoints`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "clusterIP": cluster_ip,
            "ports": [{**port, "targetPort": 53} for port in _DNS_PORTS],
        },
    }


def dns_endpoints(*, address: str) -> dict[str, Any]:
    """kube-dns's one endpoint: CoreDNS on the host, at `address`."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-host",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "cluster.rhime.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": _DNS_PORTS,
    }
