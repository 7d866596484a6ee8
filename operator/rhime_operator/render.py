"""The whole platform: every child object of one RhimeDeployment, rendered purely."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from rhime import catalogue
from rhime_operator import (
    config,
    infrastructure,
    monitoring,
    names,
    network,
    standins,
    stores,
    workloads,
)
from rhime_operator import spec as spec_mod


def render_platform(
    spec: spec_mod.Spec,
    *,
    instance: str,
    namespace: str,
    secrets: config.SecretData,
    components: Iterable[catalogue.Component] = catalogue.COMPONENTS,
    monitoring_crds: bool = False,
) -> list[dict[str, Any]]:
    """Every object the platform needs, in a safe apply order (config before workloads).

    `monitoring_crds`: the Prometheus Operator's CRDs exist, so PodMonitors and rules can be.
    """
    components = tuple(components)
    objs: list[dict[str, Any]] = [
        workloads.render_serviceaccount(instance=instance, namespace=namespace)
    ]
    users: dict[spec_mod.Infra, str] = {}
    if stores.managed(spec):
        grant = stores.access(secrets, instance=instance)
        users = {k: stores.server_digest(grant, kind=k) for k in stores.managed(spec)}
        stores_data = stores.data(
            spec, secret_data=secrets, instance=instance, namespace=namespace, components=components
        )
        objs.append(stores.render_secret(data=stores_data, instance=instance, namespace=namespace))
        # the pods' checksums cover their own URLs in it
        secrets = {**secrets, stores.secret_name(instance=instance): stores_data}
    objs += [
        config.render_configmap(spec, component=c, instance=instance, namespace=namespace)
        for c in components
    ]
    objs.append(network.render_default_deny(spec, instance=instance, namespace=namespace))
    for kind in spec_mod.Infra:
        infra = spec.infra(kind)
        if infra.managed:
            objs.append(
                infrastructure.render_headless_service(
                    kind=kind, instance=instance, namespace=namespace
                )
            )
            objs.append(
                network.render_infra_policy(kind=kind, instance=instance, namespace=namespace)
            )
            objs.append(
                infrastructure.render_statefulset(
                    infra, instance=instance, namespace=namespace, users_digest=users.get(kind, "")
                )
            )
    if spec.stand_ins:
        for standin in config.StandIn:
            place: dict[str, Any] = {
                "standin": standin,
                "instance": instance,
                "namespace": namespace,
            }
            objs.append(standins.render_service(**place))
            objs.append(network.render_standin_policy(**place))
            objs.append(standins.render_deployment(spec, secrets=secrets, **place))
    for c in components:
        kw: dict[str, Any] = {"component": c, "instance": instance, "namespace": namespace}
        if c.serves_traffic:
            objs.append(network.render_service(spec, **kw))
            if c.public and spec.gateway.ingress.enabled:
                objs.append(network.render_ingress(spec, **kw))
        if c.serves_traffic or spec.network.egress:
            objs.append(network.render_component_policy(spec, **kw))
        if c.kind is catalogue.Kind.CRON:
            objs.append(workloads.render_cronjob(spec, secrets=secrets, **kw))
        else:
            objs.append(workloads.render_deployment(spec, secrets=secrets, **kw))
            if spec.replicas(c.name) > 1:
                objs.append(
                    workloads.render_pdb(component=c.name, instance=instance, namespace=namespace)
                )
    objs += monitoring.render(spec, instance=instance, namespace=namespace, crds=monitoring_crds)
    return objs


def owned(obj: Mapping[str, Any], *, owner: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with a controller owner reference to the RhimeDeployment `owner`."""
    result = copy.deepcopy(dict(obj))
    meta = owner["metadata"]
    result["metadata"]["ownerReferences"] = [
        {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return result


def key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name): identifies a child within its RhimeDeployment's namespace."""
    return obj["kind"], obj["metadata"]["name"]
