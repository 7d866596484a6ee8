"""Services, the gateway's Ingress and NetworkPolicies.

Only the gateway is reachable from outside; every other component accepts traffic only from
the components whose `calls` name it, and managed infrastructure and the development
stand-ins only from their users.

Egress (unless `spec.network.egress` is false) is denied too, except what a component needs:
the cluster's DNS, the components its `calls` name, the stores its `backing` names (managed:
their pods; external: the networks and port of `external`), and, for the outside services its
`backing` names (Spotify, S3), their stand-ins or else HTTPS to the internet, and the OTLP
collector of `spec.monitoring.tracing`. Stores and stand-ins open no connection out.
"""

from __future__ import annotations

import ipaddress
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
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Ingress only, or (with `egress`, even empty) ingress and egress."""
    spec: dict[str, Any] = {
        "podSelector": {
            "matchLabels": names.selector_labels(instance=instance, component=component)
        }
        if component != "platform"
        else {"matchLabels": {names.LABEL_INSTANCE: instance}},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    if egress is not None:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": names.metadata(
            name=name, namespace=namespace, instance=instance, component=component
        ),
        "spec": spec,
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


def _to_pods(*, instance: str, component: str, port: int) -> dict[str, Any]:
    return {
        "to": [
            {
                "podSelector": {
                    "matchLabels": names.selector_labels(instance=instance, component=component)
                }
            }
        ],
        "ports": [{"protocol": "TCP", "port": port}],
    }


def dns_egress(network: spec_mod.Network) -> dict[str, Any]:
    """The cluster's resolver: its pods (in their namespace), on 53 over UDP and TCP."""
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": network.dns_namespace}
                },
                "podSelector": {"matchLabels": dict(network.dns_pod_labels)},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


HTTPS = 443


def internet_egress(network: spec_mod.Network) -> dict[str, Any]:
    """HTTPS to the internet: `cidr` less the excepted (private) ranges inside it."""
    whole = ipaddress.ip_network(network.internet_cidr)
    excepted = [
        c
        for c in network.internet_except
        if (net := ipaddress.ip_network(c)).version == whole.version
        and net != whole
        and net.subnet_of(whole)  # type: ignore[arg-type]
    ]
    block: dict[str, Any] = {"cidr": network.internet_cidr}
    if excepted:
        block["except"] = excepted
    return {"to": [{"ipBlock": block}], "ports": [{"protocol": "TCP", "port": HTTPS}]}


def outside_services(component: catalogue.Component) -> list[config.StandIn]:
    """The outside services (Spotify, S3) the component reaches, as their stand-ins."""
    return [s for s in config.StandIn if component.name in standin_clients(s)]


def egress_rules(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> list[dict[str, Any]]:
    """Where the component may connect to (see the module's docstring)."""
    rules = [dns_egress(spec.network)]
    for target in component.calls:
        rules.append(_to_pods(instance=instance, component=target, port=catalogue.get(target).port))
    for kind in config.infra_used(component):
        external = spec.infra(kind).external
        port = config.INFRA_PORTS[kind]
        if external is None:
            rules.append(_to_pods(instance=instance, component=kind.value, port=port))
        else:
            rules.append(
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in external.cidrs],
                    "ports": [{"protocol": "TCP", "port": external.port or port}],
                }
            )
    outside = outside_services(component)
    if spec.stand_ins:
        rules += [
            _to_pods(instance=instance, component=s.value, port=config.STANDIN_PORTS[s])
            for s in outside
        ]
    elif outside:
        rules.append(internet_egress(spec.network))
    if spec.monitoring.tracing is not None:
        rules.append(tracing_egress(spec.monitoring.tracing, namespace=namespace))
    return rules


def tracing_egress(tracing: spec_mod.Tracing, *, namespace: str) -> dict[str, Any]:
    """The OTLP collector: any pod of its namespace, on the endpoint's port."""
    where = tracing.namespace or namespace
    return {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": where}}}],
        "ports": [{"protocol": "TCP", "port": tracing.port}],
    }


def render_default_deny(spec: spec_mod.Spec, *, instance: str, namespace: str) -> dict[str, Any]:
    """Deny all ingress (and egress) to every pod of the platform unless a narrower policy
    allows it."""
    return _policy(
        name=names.child_name(instance, "default-deny"),
        instance=instance,
        namespace=namespace,
        component="platform",
        ingress=[],
        egress=[] if spec.network.egress else None,
    )


def render_component_policy(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, Any]:
    """Who may connect to the component (nobody, for one that serves no traffic) and where
    it may connect to."""
    if component.public:
        ingress: list[dict[str, Any]] = [{"ports": [{"protocol": "TCP", "port": component.port}]}]
    elif component.serves_traffic:
        ingress = _from_components(callers(component.name), instance=instance, port=component.port)
    else:
        ingress = []
    return _policy(
        name=names.child_name(instance, component.name),
        instance=instance,
        namespace=namespace,
        component=component.name,
        ingress=ingress,
        egress=egress_rules(spec, component=component, instance=instance, namespace=namespace)
        if spec.network.egress
        else None,
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
