"""Per-component configuration: the env ConfigMap, secret references and the checksum.

Each component gets its own ConfigMap, so that a change rolls only the pods that read it; the
checksum on a pod template covers exactly that ConfigMap and the Secrets the component uses.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rhime import catalogue
from rhime_operator import names, stores
from rhime_operator import spec as spec_mod

GATEWAY = "gateway"
WEB = "web"
INFRA_PORTS: Mapping[spec_mod.Infra, int] = {
    spec_mod.Infra.NATS: 4222,
    spec_mod.Infra.MONGO: 27017,
    spec_mod.Infra.REDIS: 6379,
}
_INFRA_SCHEME: Mapping[spec_mod.Infra, str] = {
    spec_mod.Infra.NATS: "nats://{host}:{port}",
    spec_mod.Infra.MONGO: "mongodb://{host}:{port}",
    spec_mod.Infra.REDIS: "redis://{host}:{port}/0",
}

SecretData = Mapping[str, Mapping[str, str]]


class StandIn(enum.StrEnum):
    """What `spec.development.standIns` runs in the cluster instead of an outside service."""

    SPOTIFY = "fake-spotify"
    S3 = "s3"


STANDIN_PORTS: Mapping[StandIn, int] = {StandIn.SPOTIFY: 8090, StandIn.S3: 9000}
STANDIN_BACKING: Mapping[StandIn, catalogue.Backing] = {
    StandIn.SPOTIFY: catalogue.Backing.SPOTIFY,
    StandIn.S3: catalogue.Backing.S3,
}


def service_host(*, instance: str, namespace: str, part: str) -> str:
    return f"{names.child_name(instance, part)}.{namespace}.svc"


def service_url_template(*, instance: str) -> str:
    """`RHIME_SERVICE_URL_TEMPLATE`: the app fills `{name}` and `{port}` from the catalogue."""
    return f"http://{instance}-{{name}}:{{port}}"


def public_url(spec: spec_mod.Spec, *, instance: str, namespace: str) -> str:
    if spec.public_url:
        return spec.public_url.rstrip("/")
    ingress = spec.gateway.ingress
    if ingress.enabled and ingress.host:
        scheme = "https" if ingress.tls_secret else "http"
        return f"{scheme}://{ingress.host}"
    port = catalogue.get(GATEWAY).port
    return f"http://{service_host(instance=instance, namespace=namespace, part=GATEWAY)}:{port}"


def stream_budget(storage: str) -> int:
    """Bytes the event streams may hold together on a NATS volume of `storage`."""
    from kubernetes.utils import quantity

    return int(quantity.parse_quantity(storage)) // 2  # type: ignore[no-untyped-call]


def upload_origin(spec: spec_mod.Spec) -> str:
    """Where browsers upload pictures: the S3 stand-in as forwarded, else the bucket's own
    (virtual-hosted) S3 endpoint, which presigned POSTs name."""
    if spec.stand_ins:
        return standin_browser_url(StandIn.S3)
    region = "" if spec.s3_region == "us-east-1" else f".{spec.s3_region}"
    return f"https://{spec.s3_bucket}.s3{region}.amazonaws.com"


def infra_used(component: catalogue.Component) -> list[spec_mod.Infra]:
    return [i for i in spec_mod.Infra if spec_mod.INFRA_BACKING[i] in component.backing]


def managed_infra_url(*, kind: spec_mod.Infra, instance: str, namespace: str) -> str:
    host = service_host(instance=instance, namespace=namespace, part=kind.value)
    return _INFRA_SCHEME[kind].format(host=host, port=INFRA_PORTS[kind])


def standin_url(*, standin: StandIn, instance: str, namespace: str) -> str:
    """The stand-in's Service, as pods reach it."""
    host = service_host(instance=instance, namespace=namespace, part=standin.value)
    return f"http://{host}:{STANDIN_PORTS[standin]}"


def standin_browser_url(standin: StandIn) -> str:
    """The stand-in as the browser reaches it: the same port forwarded to localhost (the
    Tiltfile does), since Spotify's consent page is a browser redirect, not a pod's call."""
    return f"http://localhost:{STANDIN_PORTS[standin]}"


def standin_env(*, component: catalogue.Component, instance: str, namespace: str) -> dict[str, str]:
    """Points a component at the stand-ins of the outside services its `backing` names."""
    data: dict[str, str] = {}
    if catalogue.Backing.SPOTIFY in component.backing:
        spotify = standin_url(standin=StandIn.SPOTIFY, instance=instance, namespace=namespace)
        data["RHIME_SPOTIFY_API_URL"] = spotify
        data["RHIME_SPOTIFY_ACCOUNTS_URL"] = spotify
        data["RHIME_SPOTIFY_PUBLIC_ACCOUNTS_URL"] = standin_browser_url(StandIn.SPOTIFY)
    if catalogue.Backing.S3 in component.backing:
        data["RHIME_S3_ENDPOINT_URL"] = standin_url(
            standin=StandIn.S3, instance=instance, namespace=namespace
        )
    return data


def env_data(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, str]:
    """The plain (non-secret) environment of one component."""
    data = {
        "RHIME_COMPONENT": component.name,
        "RHIME_NAMESPACE": instance,
        "RHIME_SERVICE_URL_TEMPLATE": service_url_template(instance=instance),
        "RHIME_PUBLIC_URL": public_url(spec, instance=instance, namespace=namespace),
        "RHIME_LOG_LEVEL": spec.log_level,
    }
    if spec.monitoring.tracing is not None:
        data["RHIME_OTLP_ENDPOINT"] = spec.monitoring.tracing.endpoint
    for kind in infra_used(component):
        # URLs of managed stores with users carry credentials: they come from the stores Secret
        if spec.infra(kind).managed and kind not in stores.managed(spec):
            data[spec_mod.INFRA_ENV[kind]] = managed_infra_url(
                kind=kind, instance=instance, namespace=namespace
            )
    nats = spec.infra(spec_mod.Infra.NATS)
    if spec_mod.Infra.NATS in infra_used(component) and nats.managed:
        # JetStream reserves every stream's size on its volume: the streams get half of it
        data["RHIME_STREAM_STORAGE_BYTES"] = str(stream_budget(nats.storage))
    if catalogue.Backing.S3 in component.backing:
        data["RHIME_S3_BUCKET"] = spec.s3_bucket
        data["RHIME_S3_REGION"] = spec.s3_region
    if component.name == WEB:
        # the browser sends profile pictures straight to the image store: its pages allow it
        data["RHIME_UPLOAD_ORIGIN"] = upload_origin(spec)
    if spec.stand_ins:
        data |= standin_env(component=component, instance=instance, namespace=namespace)
    return data


def configmap_name(*, instance: str, component: str) -> str:
    return names.child_name(instance, f"{component}-env")


def render_configmap(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str, namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.metadata(
            name=configmap_name(instance=instance, component=component.name),
            namespace=namespace,
            instance=instance,
            component=component.name,
        ),
        "data": env_data(spec, component=component, instance=instance, namespace=namespace),
    }


def env_from(*, component: catalogue.Component, instance: str) -> list[dict[str, Any]]:
    """The component's own ConfigMap, whole (Secrets come key by key, in `env`)."""
    return [{"configMapRef": {"name": configmap_name(instance=instance, component=component.name)}}]


def env(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str
) -> list[dict[str, Any]]:
    """Explicit env: the Secret keys the component reads (one by one: never a whole Secret),
    external infrastructure URLs from Secrets, its own managed store URLs, then the spec's
    overrides."""
    items: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": spec.secret_name(s), "key": key}}}
        for s, keys in component.secret_keys().items()
        for key in keys
    ]
    for kind in infra_used(component):
        external = spec.infra(kind).external
        if external is not None:
            key = external.key_for(component.name)
            items.append(
                {
                    "name": spec_mod.INFRA_ENV[kind],
                    "valueFrom": {"secretKeyRef": {"name": external.name, "key": key}},
                }
            )
    items += stores.env(spec, component=component, instance=instance)
    items += [{"name": k, "value": v} for k, v in spec.override(component.name).env]
    return items


def used_secrets(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str
) -> dict[str, tuple[str, ...]]:
    """Secret name -> the keys of it that the component's pods read."""
    used: dict[str, set[str]] = {}
    if keys := stores.used_keys(spec, component=component):
        used[stores.secret_name(instance=instance)] = set(keys)
    for secret, keys in component.secret_keys().items():
        used.setdefault(spec.secret_name(secret), set()).update(keys)
    for kind in infra_used(component):
        external = spec.infra(kind).external
        if external is not None:
            used.setdefault(external.name, set()).add(external.key_for(component.name))
    return {name: tuple(sorted(keys)) for name, keys in used.items()}


def external_keys(
    spec: spec_mod.Spec, *, components: tuple[catalogue.Component, ...] = catalogue.COMPONENTS
) -> set[tuple[str, str]]:
    """(Secret, key) of every external store URL some component reads."""
    return {
        (external.name, external.key_for(c.name))
        for c in components
        for kind in infra_used(c)
        if (external := spec.infra(kind).external) is not None
    }


def checksum(
    spec: spec_mod.Spec,
    *,
    component: catalogue.Component,
    instance: str,
    namespace: str,
    secrets: SecretData,
) -> str:
    """A digest of everything the pods read from ConfigMaps and Secrets, and nothing else."""
    read: dict[str, Any] = {}
    for name, keys in sorted(used_secrets(spec, component=component, instance=instance).items()):
        data = secrets.get(name, {})
        read[name] = {key: data.get(key) for key in keys}
    payload = {
        "configmap": env_data(spec, component=component, instance=instance, namespace=namespace),
        "secrets": read,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
