"""Operator-managed NATS (JetStream), MongoDB and Redis: StatefulSets with headless Services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rhime_operator import config, names, stores, workloads
from rhime_operator import spec as spec_mod

Infra = spec_mod.Infra

IMAGES: Mapping[Infra, str] = {Infra.NATS: "nats", Infra.MONGO: "mongo", Infra.REDIS: "redis"}
# The official images' unprivileged users.
UIDS: Mapping[Infra, int] = {Infra.NATS: 1000, Infra.MONGO: 999, Infra.REDIS: 999}
DATA_DIR: Mapping[Infra, str] = {Infra.NATS: "/data", Infra.MONGO: "/data/db", Infra.REDIS: "/data"}
NATS_MONITOR_PORT = 8222
DEFAULT_RESOURCES: Mapping[Infra, dict[str, Any]] = {
    Infra.NATS: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    Infra.MONGO: {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    Infra.REDIS: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
}


# Share of its container's memory limit Redis may fill: the rest covers the fork of an AOF
# rewrite (copy-on-write pages) and allocator overhead, so Redis refuses writes before the
# kernel kills it (an OOM kill would then crash-loop replaying the same AOF).
REDIS_MEMORY_SHARE = 0.6


def redis_maxmemory(resources: Mapping[str, Any]) -> int:
    """`maxmemory` in bytes for a Redis container with these resources."""
    from kubernetes.utils import quantity

    limit = (resources.get("limits") or {}).get("memory")
    limit = limit or DEFAULT_RESOURCES[Infra.REDIS]["limits"]["memory"]
    return int(float(quantity.parse_quantity(limit)) * REDIS_MEMORY_SHARE)  # type: ignore[no-untyped-call]


def _args(kind: Infra, *, resources: Mapping[str, Any]) -> list[str]:
    if kind is Infra.NATS:
        return ["--jetstream", "--store_dir", DATA_DIR[kind], "--http_port", str(NATS_MONITOR_PORT)]
    if kind is Infra.MONGO:
        return ["mongod", "--bind_ip_all", "--dbpath", DATA_DIR[kind]]
    return [
        "redis-server",
        "--appendonly",
        "yes",
        "--dir",
        DATA_DIR[kind],
        "--protected-mode",
        "no",
        # full means writes are refused, never that state (queues, pending like counts,
        # revocations) is evicted; every cache key carries a TTL (docs/kit.md)
        "--maxmemory",
        str(redis_maxmemory(resources)),
        "--maxmemory-policy",
        "noeviction",
    ]


def _probes(kind: Infra) -> dict[str, Any]:
    port = config.INFRA_PORTS[kind]
    if kind is Infra.NATS:
        live: dict[str, Any] = {"httpGet": {"path": "/healthz", "port": NATS_MONITOR_PORT}}
        ready: dict[str, Any] = {
            "httpGet": {"path": "/healthz?js-enabled-only=true", "port": NATS_MONITOR_PORT}
        }
    else:
        live = ready = {"tcpSocket": {"port": port}}
    return {
        "livenessProbe": {**live, "initialDelaySeconds": 10, "periodSeconds": 10},
        "readinessProbe": {**ready, "periodSeconds": 5},
    }


def render_headless_service(*, kind: Infra, instance: str, namespace: str) -> dict[str, Any]:
    port = config.INFRA_PORTS[kind]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(
            name=names.child_name(instance, kind.value),
            namespace=namespace,
            instance=instance,
            component=kind.value,
        ),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": names.selector_labels(instance=instance, component=kind.value),
            "ports": [{"name": kind.value, "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def render_statefulset(
    infra: spec_mod.InfraSpec, *, instance: str, namespace: str, users_digest: str = ""
) -> dict[str, Any]:
    """With `users_digest`, the server admits only the users of the stores Secret, and
    restarts when they change (MongoDB: a `users` container beside it creates them)."""
    kind = infra.kind
    name = names.child_name(instance, kind.value)
    port = config.INFRA_PORTS[kind]
    ports = [{"name": kind.value, "containerPort": port, "protocol": "TCP"}]
    if kind is Infra.NATS:
        ports.append({"name": "monitor", "containerPort": NATS_MONITOR_PORT, "protocol": "TCP"})
    claim: dict[str, Any] = {
        "metadata": {
            "name": "data",
            "labels": names.labels(instance=instance, component=kind.value),
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": infra.storage}},
        },
    }
    if infra.storage_class:
        claim["spec"]["storageClassName"] = infra.storage_class
    resources = dict(infra.resources or DEFAULT_RESOURCES[kind])
    container: dict[str, Any] = {
        "name": kind.value,
        "image": infra.image or f"{IMAGES[kind]}:{infra.version}",
        "imagePullPolicy": infra.pull_policy,
        "args": _args(kind, resources=resources),
        "ports": ports,
        "resources": resources,
        "securityContext": workloads.container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR[kind]},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        **_probes(kind),
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    template_meta: dict[str, Any] = {
        "labels": names.labels(instance=instance, component=kind.value)
    }
    containers = [container]
    if users_digest:
        container["args"] = [*container["args"], *stores.server_args(kind)]
        volumes.append(stores.server_volume(kind, instance=instance))
        template_meta["annotations"] = {names.CHECKSUM_ANNOTATION: users_digest}
        if kind is Infra.MONGO:
            container["env"] = stores.mongo_root_env(instance=instance)
            containers.append(
                stores.users_container(
                    image=container["image"],
                    pull_policy=infra.pull_policy,
                    port=port,
                    instance=instance,
                    security=workloads.container_security_context(),
                )
            )
        else:
            container["volumeMounts"].append(
                {"name": "users", "mountPath": stores.MOUNT, "readOnly": True}
            )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": names.metadata(
            name=name, namespace=namespace, instance=instance, component=kind.value
        ),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "podManagementPolicy": "OrderedReady",
            "selector": {
                "matchLabels": names.selector_labels(instance=instance, component=kind.value)
            },
            "template": {
                "metadata": template_meta,
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": workloads.pod_security_context(uid=UIDS[kind]),
                    "containers": containers,
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [claim],
        },
    }
