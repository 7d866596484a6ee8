"""Names, labels and the API coordinates every renderer and handler agrees on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "rhime.dev"
VERSION = "v1alpha1"
PLURAL = "rhimedeployments"
KIND = "RhimeDeployment"
API_VERSION = f"{GROUP}/{VERSION}"

MANAGED_BY = "rhime-operator"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"

# Every kind of child the operator renders: kind -> (apiVersion, plural).
CHILD_KINDS: Mapping[str, tuple[str, str]] = {
    "ServiceAccount": ("v1", "serviceaccounts"),
    "ConfigMap": ("v1", "configmaps"),
    "Service": ("v1", "services"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "Deployment": ("apps/v1", "deployments"),
    "CronJob": ("batch/v1", "cronjobs"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"),
}


def child_name(instance: str, part: str) -> str:
    """`<rd-name>-<component>`: the DNS name of a component's Service and its objects."""
    return f"{instance}-{part}"


def selector_labels(*, instance: str, component: str) -> dict[str, str]:
    return {LABEL_INSTANCE: instance, LABEL_COMPONENT: component}


def labels(*, instance: str, component: str) -> dict[str, str]:
    return {
        LABEL_NAME: "rhime",
        LABEL_PART_OF: "rhime",
        LABEL_MANAGED_BY: MANAGED_BY,
        **selector_labels(instance=instance, component=component),
    }


def metadata(
    *, name: str, namespace: str, instance: str, component: str, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(instance=instance, component=component),
        **extra,
    }
