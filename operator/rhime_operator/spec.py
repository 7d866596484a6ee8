"""Typed RhimeDeployment spec: parsing, defaults and validation.

`parse()` turns the raw `spec` mapping into a frozen `Spec` or raises `SpecError` with a
machine-readable reason; the operator applies nothing from a spec that does not parse.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from rhime import catalogue

DEFAULT_REPOSITORY = "ghcr.io/rhime/rhime"
DEFAULT_TAG = "latest"
DNS_LABEL_MAX = 63

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")
_RESERVED_ENV = ("RHIME_COMPONENT", "RHIME_NAMESPACE", "RHIME_SERVICE_URL_TEMPLATE")


class SpecError(ValueError):
    """The spec cannot be rendered; `reason` is a CamelCase condition reason."""

    def __init__(self, message: str, *, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Infra(enum.StrEnum):
    NATS = "nats"
    MONGO = "mongo"
    REDIS = "redis"


INFRA_BACKING: Mapping[Infra, catalogue.Backing] = {
    Infra.NATS: catalogue.Backing.NATS,
    Infra.MONGO: catalogue.Backing.MONGO,
    Infra.REDIS: catalogue.Backing.REDIS,
}
DEFAULT_INFRA_VERSION: Mapping[Infra, str] = {
    Infra.NATS: "2.10-alpine",
    Infra.MONGO: "7.0",
    Infra.REDIS: "7.2-alpine",
}
INFRA_ENV: Mapping[Infra, str] = {
    Infra.NATS: "RHIME_NATS_URL",
    Infra.MONGO: "RHIME_MONGO_URL",
    Infra.REDIS: "RHIME_REDIS_URL",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Image:
    repository: str = DEFAULT_REPOSITORY
    tag: str = DEFAULT_TAG
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        if self.tag.startswith("sha256:"):
            return f"{self.repository}@{self.tag}"
        return f"{self.repository}:{self.tag}" if self.tag else self.repository


@dataclasses.dataclass(frozen=True, kw_only=True)
class Override:
    """Per-component overrides; `None`/empty means "use the default"."""

    replicas: int | None = None
    resources: Mapping[str, Any] | None = None
    env: tuple[tuple[str, str], ...] = ()
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecretKeyRef:
    name: str
    key: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class External(SecretKeyRef):
    """An external server: its URL in a Secret key, and where its users may connect to
    (egress NetworkPolicies): these networks on this port (None: the store's usual one)."""

    cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    port: int | None = None
    # Each component reads its own key `<component>-<key>` (its own user), not the one `key`.
    per_component: bool = False

    def key_for(self, component: str) -> str:
        return f"{component}-{self.key}" if self.per_component else self.key


@dataclasses.dataclass(frozen=True, kw_only=True)
class InfraSpec:
    """One piece of infrastructure: managed by the operator, or external via a Secret."""

    kind: Infra
    version: str
    storage: str = "1Gi"
    storage_class: str | None = None
    resources: Mapping[str, Any] | None = None
    external: External | None = None
    # A full image reference instead of the official image at `version` (air-gapped
    # clusters, a mirror, a locally imported image).
    image: str | None = None
    pull_policy: str = "IfNotPresent"
    # Managed MongoDB only: a user per component (Redis and NATS always have them). Off for
    # an image that cannot hold users with roles (the FerretDB stand-in of tests/cluster).
    authentication: bool = True

    @property
    def managed(self) -> bool:
        return self.external is None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ingress:
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    tls_secret: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gateway:
    service_type: str = "ClusterIP"
    node_port: int | None = None
    ingress: Ingress = Ingress()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tracing:
    """An OTLP/HTTP collector every component exports its spans to (RHIME_OTLP_ENDPOINT)."""

    endpoint: str
    # The collector's namespace (default: the platform's): egress to it there is allowed.
    namespace: str | None = None

    @property
    def port(self) -> int:
        parts = urllib.parse.urlsplit(self.endpoint)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Monitoring:
    """Prometheus Operator objects and Grafana dashboards for the platform (monitoring.py),
    and where traces go (independent of `enabled`, which is about Prometheus and Grafana)."""

    enabled: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    interval: str = "30s"
    # Prometheus's namespace: a NetworkPolicy lets it scrape (the default policy denies).
    prometheus_namespace: str | None = None
    alerts: bool = True
    dashboards: bool = True
    tracing: Tracing | None = None


# Where "the internet" is for egress: everything but private, shared and link-local ranges
# (pods, Services, nodes, the cloud's metadata endpoint at 169.254.169.254).
PRIVATE_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Network:
    """Egress NetworkPolicies (network.py): on by default; DNS is the cluster's resolver."""

    egress: bool = True
    dns_namespace: str = "kube-system"
    dns_pod_labels: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"k8s-app": "kube-dns"}
    )
    internet_cidr: str = "0.0.0.0/0"
    internet_except: tuple[str, ...] = PRIVATE_CIDRS


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    image: Image = Image()
    log_level: str = "INFO"
    public_url: str | None = None
    components: Mapping[str, Override] = dataclasses.field(default_factory=dict)
    infrastructure: Mapping[Infra, InfraSpec] = dataclasses.field(default_factory=dict)
    secrets: Mapping[catalogue.Secret, str] = dataclasses.field(default_factory=dict)
    s3_bucket: str = "rhime-media"
    s3_region: str = "us-east-1"
    gateway: Gateway = Gateway()
    schedules: Mapping[str, str] = dataclasses.field(default_factory=dict)
    paused: bool = False
    # Development only (Tilt): writable root FS and a server loop restartable after a sync.
    live_reload: bool = False
    # Development only: a fake Spotify and an S3 stand-in run in the cluster (standins.py).
    stand_ins: bool = False
    monitoring: Monitoring = Monitoring()
    network: Network = Network()

    def override(self, name: str) -> Override:
        return self.components.get(name, Override())

    def replicas(self, name: str) -> int:
        replicas = self.override(name).replicas
        return 1 if replicas is None else replicas

    def schedule(self, component: catalogue.Component) -> str:
        return self.schedules.get(component.name) or component.schedule or "0 0 * * *"

    def secret_name(self, secret: catalogue.Secret) -> str:
        return self.secrets[secret]

    def infra(self, kind: Infra) -> InfraSpec:
        return self.infrastructure[kind]


def _mapping(value: Any, *, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"spec.{field} must be an object, not {type(value).__name__}")
    return value


def _sequence(value: Any, *, field: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"spec.{field} must be a list")
    return value


def _str(value: Any, *, field: str, default: str | None = None) -> str:
    if value is None:
        if default is None:
            raise SpecError(f"spec.{field} is required")
        return default
    if not isinstance(value, str) or not value:
        raise SpecError(f"spec.{field} must be a non-empty string")
    return value


def _dns_label(value: str, *, field: str) -> str:
    if len(value) > DNS_LABEL_MAX or not _DNS_LABEL.match(value):
        raise SpecError(f"spec.{field} {value!r} is not a valid DNS label")
    return value


def _quantity(value: Any, *, field: str) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise SpecError(f"spec.{field} {text!r} is not a Kubernetes quantity")
    return text


def _resources(value: Any, *, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    resources = _mapping(value, field=field)
    for part in resources:
        if part not in ("requests", "limits"):
            raise SpecError(f"spec.{field}.{part} is unknown (requests or limits)")
        for name, quantity in _mapping(resources[part], field=f"{field}.{part}").items():
            _quantity(quantity, field=f"{field}.{part}.{name}")
    return resources


def _image(raw: Mapping[str, Any]) -> Image:
    policy = _str(raw.get("pullPolicy"), field="image.pullPolicy", default="IfNotPresent")
    if policy not in ("Always", "IfNotPresent", "Never"):
        raise SpecError(f"spec.image.pullPolicy {policy!r} is not Always, IfNotPresent or Never")
    pull_secrets = tuple(
        _dns_label(_str(s, field="image.pullSecrets[]"), field="image.pullSecrets[]")
        for s in _sequence(raw.get("pullSecrets"), field="image.pullSecrets")
    )
    return Image(
        repository=_str(
            raw.get("repository"), field="image.repository", default=DEFAULT_REPOSITORY
        ),
        tag=_str(raw.get("tag"), field="image.tag", default=DEFAULT_TAG),
        pull_policy=policy,
        pull_secrets=pull_secrets,
    )


def _override(name: str, raw: Mapping[str, Any]) -> Override:
    field = f"components.{name}"
    replicas = raw.get("replicas")
    if replicas is not None and (
        isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0
    ):
        raise SpecError(f"spec.{field}.replicas must be a non-negative integer")
    env: list[tuple[str, str]] = []
    for item in _sequence(raw.get("env"), field=f"{field}.env"):
        entry = _mapping(item, field=f"{field}.env[]")
        key = _str(entry.get("name"), field=f"{field}.env[].name")
        if not _ENV_NAME.match(key) or key in _RESERVED_ENV:
            raise SpecError(f"spec.{field}.env: {key!r} is not an allowed variable name")
        env.append((key, str(entry.get("value", ""))))
    tolerations = tuple(
        _mapping(t, field=f"{field}.tolerations[]")
        for t in _sequence(raw.get("tolerations"), field=f"{field}.tolerations")
    )
    affinity = raw.get("affinity")
    return Override(
        replicas=replicas,
        resources=_resources(raw.get("resources"), field=f"{field}.resources"),
        env=tuple(env),
        node_selector={
            str(k): str(v)
            for k, v in _mapping(raw.get("nodeSelector"), field=f"{field}.nodeSelector").items()
        },
        tolerations=tolerations,
        affinity=_mapping(affinity, field=f"{field}.affinity") if affinity is not None else None,
    )


def _infra(kind: Infra, raw: Mapping[str, Any]) -> InfraSpec:
    field = f"infrastructure.{kind}"
    external: External | None = None
    if raw.get("external") is not None:
        ext = _mapping(raw["external"], field=f"{field}.external")
        ref = _mapping(ext.get("secretRef"), field=f"{field}.external.secretRef")
        secret = _str(ref.get("name"), field=f"{field}.external.secretRef.name")
        external = External(
            name=_dns_label(secret, field=f"{field}.external.secretRef.name"),
            key=_str(ref.get("key"), field=f"{field}.external.secretRef.key", default="url"),
            cidrs=tuple(
                _cidr(c, field=f"{field}.external.cidrs[]")
                for c in _sequence(ext.get("cidrs", ["0.0.0.0/0"]), field=f"{field}.external.cidrs")
            ),
            port=_port(ext.get("port"), field=f"{field}.external.port"),
            per_component=_bool(
                ext.get("perComponent", False), field=f"{field}.external.perComponent"
            ),
        )
    managed = _mapping(raw.get("managed"), field=f"{field}.managed")
    if external is not None and raw.get("managed") is not None:
        raise SpecError(f"spec.{field}: set either managed or external, not both")
    storage_class = managed.get("storageClassName")
    image = managed.get("image")
    if image is not None and (not isinstance(image, str) or not image or " " in image):
        raise SpecError(f"spec.{field}.managed.image must be an image reference")
    pull_policy = _str(
        managed.get("imagePullPolicy"),
        field=f"{field}.managed.imagePullPolicy",
        default="IfNotPresent",
    )
    if pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise SpecError(
            f"spec.{field}.managed.imagePullPolicy {pull_policy!r}: Always, IfNotPresent or Never"
        )
    authentication = managed.get("authentication", True)
    if not isinstance(authentication, bool):
        raise SpecError(f"spec.{field}.managed.authentication must be true or false")
    if not authentication and kind is not Infra.MONGO:
        raise SpecError(
            f"spec.{field}.managed.authentication: only MongoDB's can be turned off "
            "(Redis and NATS always admit only the components' users)"
        )
    return InfraSpec(
        kind=kind,
        version=_str(
            managed.get("version"),
            field=f"{field}.managed.version",
            default=DEFAULT_INFRA_VERSION[kind],
        ),
        storage=_quantity(managed.get("storage", "1Gi"), field=f"{field}.managed.storage"),
        storage_class=str(storage_class) if storage_class else None,
        resources=_resources(managed.get("resources"), field=f"{field}.managed.resources"),
        external=external,
        image=image,
        pull_policy=pull_policy,
        authentication=authentication,
    )


def _gateway(raw: Mapping[str, Any]) -> Gateway:
    service = _mapping(raw.get("service"), field="gateway.service")
    service_type = _str(service.get("type"), field="gateway.service.type", default="ClusterIP")
    if service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise SpecError(f"spec.gateway.service.type {service_type!r} is not supported")
    node_port = service.get("nodePort")
    if node_port is not None and (not isinstance(node_port, int) or not 1 <= node_port <= 65535):
        raise SpecError("spec.gateway.service.nodePort must be a port number")
    ing = _mapping(raw.get("ingress"), field="gateway.ingress")
    tls = _mapping(ing.get("tls"), field="gateway.ingress.tls")
    enabled = bool(ing.get("enabled", False))
    host = ing.get("host")
    if enabled and tls and not host:
        raise SpecError("spec.gateway.ingress.tls needs spec.gateway.ingress.host")
    return Gateway(
        service_type=service_type,
        node_port=node_port,
        ingress=Ingress(
            enabled=enabled,
            host=str(host) if host else None,
            class_name=str(ing["className"]) if ing.get("className") else None,
            tls_secret=str(tls["secretName"]) if tls.get("secretName") else None,
        ),
    )


def _cidr(value: Any, *, field: str) -> str:
    text = _str(value, field=field)
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        raise SpecError(f"spec.{field} {text!r} is not a network (CIDR)") from None


def _bool(value: Any, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"spec.{field} must be true or false")
    return value


def _port(value: Any, *, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SpecError(f"spec.{field} must be a port number")
    return value


def _network(raw: Mapping[str, Any]) -> Network:
    egress = raw.get("egress", True)
    if not isinstance(egress, bool):
        raise SpecError("spec.network.egress must be true or false")
    dns = _mapping(raw.get("dns"), field="network.dns")
    labels = {
        str(k): _str(v, field=f"network.dns.podLabels.{k}")
        for k, v in _mapping(dns.get("podLabels"), field="network.dns.podLabels").items()
    }
    internet = _mapping(raw.get("internet"), field="network.internet")
    cidr = _cidr(internet.get("cidr", "0.0.0.0/0"), field="network.internet.cidr")
    excepted = tuple(
        _cidr(c, field="network.internet.except[]")
        for c in _sequence(internet.get("except", PRIVATE_CIDRS), field="network.internet.except")
    )
    return Network(
        egress=egress,
        dns_namespace=_dns_label(
            _str(dns.get("namespace"), field="network.dns.namespace", default="kube-system"),
            field="network.dns.namespace",
        ),
        dns_pod_labels=labels or {"k8s-app": "kube-dns"},
        internet_cidr=cidr,
        internet_except=excepted,
    )


_INTERVAL = re.compile(r"[1-9][0-9]{0,3}(s|m)")


def _monitoring(raw: Mapping[str, Any]) -> Monitoring:
    flags = {}
    for field in ("enabled", "alerts", "dashboards"):
        value = raw.get(field, field != "enabled")
        if not isinstance(value, bool):
            raise SpecError(f"spec.monitoring.{field} must be true or false")
        flags[field] = value
    labels = {
        str(k): _str(v, field=f"monitoring.labels.{k}")
        for k, v in _mapping(raw.get("labels"), field="monitoring.labels").items()
    }
    interval = _str(raw.get("interval"), field="monitoring.interval", default="30s")
    if not _INTERVAL.fullmatch(interval):
        raise SpecError("spec.monitoring.interval must be like 30s or 1m")
    namespace = raw.get("prometheusNamespace")
    tracing = raw.get("tracing")
    return Monitoring(
        labels=labels,
        interval=interval,
        tracing=None
        if tracing is None
        else _tracing(_mapping(tracing, field="monitoring.tracing")),
        prometheus_namespace=_dns_label(
            _str(namespace, field="monitoring.prometheusNamespace"),
            field="monitoring.prometheusNamespace",
        )
        if namespace
        else None,
        **flags,
    )


def _tracing(raw: Mapping[str, Any]) -> Tracing:
    endpoint = _str(raw.get("endpoint"), field="monitoring.tracing.endpoint")
    try:
        parts = urllib.parse.urlsplit(endpoint)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise SpecError(
            "spec.monitoring.tracing.endpoint must be an OTLP/HTTP base URL like "
            "http://otel-collector.monitoring:4318"
        )
    namespace = raw.get("namespace")
    return Tracing(
        endpoint=endpoint.rstrip("/"),
        namespace=_dns_label(
            _str(namespace, field="monitoring.tracing.namespace"),
            field="monitoring.tracing.namespace",
        )
        if namespace
        else None,
    )


def _schedules(raw: Mapping[str, Any]) -> dict[str, str]:
    schedules: dict[str, str] = {}
    for name, value in raw.items():
        component = catalogue.BY_NAME.get(name)
        if component is None or component.kind is not catalogue.Kind.CRON:
            crons = ", ".join(c.name for c in catalogue.COMPONENTS if c.kind is catalogue.Kind.CRON)
            raise SpecError(f"spec.schedules.{name}: not a CronJob component (known: {crons})")
        text = _str(value, field=f"schedules.{name}")
        fields = text.split()
        if not (text.startswith("@") or (len(fields) == 5 and all(map(_CRON_FIELD.match, fields)))):
            raise SpecError(f"spec.schedules.{name}: {text!r} is not a cron schedule")
        schedules[name] = text
    return schedules


def parse(raw: Mapping[str, Any] | None, *, name: str) -> Spec:
    """Parse and validate the RhimeDeployment named `name`; raise SpecError if invalid."""
    longest = max(len(c.name) for c in catalogue.COMPONENTS)
    if len(name) + 1 + longest > DNS_LABEL_MAX or not _DNS_LABEL.match(name):
        raise SpecError(
            f"name {name!r} must be a DNS label of at most {DNS_LABEL_MAX - 1 - longest} "
            "characters so that every component's Service name is valid",
            reason="InvalidName",
        )
    spec = _mapping(raw, field="")
    components: dict[str, Override] = {}
    for key, value in _mapping(spec.get("components"), field="components").items():
        if key not in catalogue.BY_NAME:
            known = ", ".join(sorted(catalogue.BY_NAME))
            raise SpecError(f"spec.components.{key}: unknown component (known: {known})")
        components[key] = _override(key, _mapping(value, field=f"components.{key}"))
    infra_raw = _mapping(spec.get("infrastructure"), field="infrastructure")
    for key in infra_raw:
        if key not in set(Infra):
            raise SpecError(f"spec.infrastructure.{key}: unknown (nats, mongo or redis)")
    secrets_raw = _mapping(spec.get("secrets"), field="secrets")
    for key in secrets_raw:
        if key not in set(catalogue.Secret):
            raise SpecError(f"spec.secrets.{key}: unknown (auth, spotify or aws)")
    s3 = _mapping(spec.get("s3"), field="s3")
    log_level = _str(spec.get("logLevel"), field="logLevel", default="INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SpecError(f"spec.logLevel {log_level!r} is not a log level")
    paused = spec.get("paused", False)
    if not isinstance(paused, bool):
        raise SpecError("spec.paused must be true or false")
    public_url = spec.get("publicUrl")
    development = _mapping(spec.get("development"), field="development")
    live_reload = development.get("liveReload", False)
    if not isinstance(live_reload, bool):
        raise SpecError("spec.development.liveReload must be true or false")
    stand_ins = development.get("standIns", False)
    if not isinstance(stand_ins, bool):
        raise SpecError("spec.development.standIns must be true or false")
    return Spec(
        image=_image(_mapping(spec.get("image"), field="image")),
        log_level=log_level,
        public_url=str(public_url) if public_url else None,
        components=components,
        infrastructure={
            kind: _infra(kind, _mapping(infra_raw.get(kind.value), field=f"infrastructure.{kind}"))
            for kind in Infra
        },
        secrets={
            secret: _dns_label(
                _str(
                    secrets_raw.get(secret.value),
                    field=f"secrets.{secret}",
                    default=f"rhime-{secret}",
                ),
                field=f"secrets.{secret}",
            )
            for secret in catalogue.Secret
        },
        s3_bucket=_str(s3.get("bucket"), field="s3.bucket", default="rhime-media"),
        s3_region=_str(s3.get("region"), field="s3.region", default="us-east-1"),
        gateway=_gateway(_mapping(spec.get("gateway"), field="gateway")),
        schedules=_schedules(_mapping(spec.get("schedules"), field="schedules")),
        paused=paused,
        live_reload=live_reload,
        stand_ins=stand_ins,
        monitoring=_monitoring(_mapping(spec.get("monitoring"), field="monitoring")),
        network=_network(_mapping(spec.get("network"), field="network")),
    )


def referenced_secrets(spec: Spec) -> set[str]:
    """Every Secret name the spec points at (app secrets and external infra URLs)."""
    names = set(spec.secrets.values())
    names.update(i.external.name for i in spec.infrastructure.values() if i.external)
    return names
