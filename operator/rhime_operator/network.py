"""Services, the gateway's Ingress and NetworkPolicies.

Only the gateway is reachable from outside; every other component accepts traffic only from
the components whose `calls` name it, and managed infrastructure and the development
stand-ins only from their users.
"""

from __future__ import annotations

from typing import Any

from rhime import catalogue
from rhime_operator import config, names, workloads
from rhime_operator import spec as spec_mod


def render_service(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, Any]:
    port: dict[str, Any] = {
        "name": workloads.port_name(component),
        "port": component.port,
        "targetPort": workloads.port_name(component),
        "protocol": "TCP",
    }
    service_spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": names.selector_labels(instance=instance, component=component.name),
        "ports": [port],
    }
    if component.kind is catalogue.Kind.GRPC:
        port["appProtocol"] = "grpc"
    if component.public:
        service_spec["type"] = spec.gateway.service_type
        if spec.gateway.node_port is not None and spec.gateway.service_type != "ClusterIP":
            port["nodePort"] = spec.gateway.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(
            name=names.child_name(instance, component.name),
            namespace=namespace,
            instance=instance,
            component=component.name,
        ),
        "spec": service_spec,
    }


def render_ingress(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, Any]:
    ingress = spec.gateway.ingress
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {
                        "service": {
                            "name": names.child_name(instance, component.name),
                            "port": {"number": component.port},
                        }
                    },
                }
            ]
        }
    }
    if ingress.host:
        rule["host"] = ingress.host
    ingress_spec: dict[str, Any] = {"rules": [rule]}
    if ingress.class_name:
        ingress_spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret and ingress.host:
        ingress_spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": names.metadata(
            name=names.child_name(instance, component.name),
            namespace=namespace,
            instance=instance,
            component=component.name,
        ),
        "spec": ingress_spec,
    }


def callers(target: str) -> list[str]:
    """Components whose `calls` include `target`, in catalogue order."""
    return [c.name for c in catalogue.COMPONENTS if target in c.calls]


def users(kind: spec_mod.Infra) -> list[str]:
    backing = spec_mod.INFRA_BACKING[kind]
    return [c.name for c in catalogue.COMPONENTS if backing in c.backing]


# web PUTs a profile picture to the presigned S3 URL itself (rhime.web.avatar), so the S3
# stand-in admits it as well as the components whose `backing` is S3.
_S3_UPLOADERS = ("web",)


def standin_clients(standin: config.StandIn) -> list[str]:
    """Components that reach a development stand-in, in catalogue order."""
    backing = config.STANDIN_BACKING[standin]
    return [
        c.name
        for c in catalogue.COMPONENTS
        if backing in c.backing or (standin is config.StandIn.S3 and c.name in _S3_UPLOADERS)
    ]


def _policy(
    *,
    name: str,
    instance: str,
    namespace: str,
    component: str,
    ingress: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": names.metadata(
            name=name, namespace=namespace, instance=instance, component=component
        ),
        "spec": {
            "podSelector": {
                "matchLabels": names.selector_labels(instance=instance, component=component)
            }
            if component != "platform"
            else {"matchLabels": {names.LABEL_INSTANCE: instance}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def _from_components(components: list[str], *, instance: str, port: int) -> list[dict[str, Any]]:
    if not components:
        return []
    return [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": names.selector_labels(instance=instance, component=c)
                    }
                }
                for c in components
            ],
            "ports": [{"protocol": "TCP", "port": port}],
        }
    ]


def render_default_deny(*, instance: str, namespace: str) -> dict[str, Any]:
    """Deny all ingress to every pod of the platform unless a narrower policy allows it."""
    return _policy(
        name=names.child_name(instance, "default-deny"),
        instance=instance,
        namespace=namespace,
        component="platform",
        ingress=[],
    )


def render_component_policy(
    *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, Any]:
    if component.public:
        ingress: list[dict[str, Any]] = [{"ports": [{"protocol": "TCP", "port": component.port}]}]
    else:
        ingress = _from_components(callers(component.name), instance=instance, port=component.port)
    return _policy(
        name=names.child_name(instance, component.name),
        instance=instance,
        namespace=namespace,
        component=component.name,
        ingress=ingress,
    )


def render_infra_policy(*, kind: spec_mod.Infra, instance: str, namespace: str) -> dict[str, Any]:
    return _policy(
        name=names.child_name(instance, kind.value),
        instance=instance,
        namespace=namespace,
        component=kind.value,
        ingress=_from_components(users(kind), instance=instance, port=config.INFRA_PORTS[kind]),
    )


def render_standin_policy(
    *, standin: config.StandIn, instance: str, namespace: str
) -> dict[str, Any]:
    return _policy(
        name=names.child_name(instance, standin.value),
        instance=instance,
        namespace=namespace,
        component=standin.value,
        ingress=_from_components(
            standin_clients(standin), instance=instance, port=config.STANDIN_PORTS[standin]
        ),
    )
