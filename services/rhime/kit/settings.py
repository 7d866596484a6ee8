"""Settings shared by every component; each component subclasses them for its own."""

from __future__ import annotations

import re

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_NAMESPACE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class Settings(BaseSettings):
    """Read from `RHIME_*` environment variables (Kubernetes injects them from ConfigMaps and
    Secrets; the local runner sets them per process)."""

    model_config = SettingsConfigDict(
        env_prefix="RHIME_", extra="ignore", frozen=True, validate_by_name=True
    )

    component: str = Field(default="", description="component name (set by `rhime serve`)")
    namespace: str = Field(
        default="rhime",
        pattern=_NAMESPACE.pattern,
        description="prefix of database names, Redis keys and NATS subjects; isolates "
        "deployments (and tests) that share servers",
    )
    host: str = Field(default="0.0.0.0", description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="port (the catalogue's)")
    mongo_url: str = Field(default="mongodb://127.0.0.1:27017/", description="MongoDB URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL")
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS URL (JetStream)")
    service_url_template: str = Field(
        default="http://{name}:{port}",
        description="how components reach each other; `{name}` and `{port}` come from the "
        "catalogue",
    )
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description="per-component base URLs that override the template (JSON object), "
        "e.g. for processes on free ports",
    )
    internal_secret: SecretStr = Field(
        min_length=32,
        description="signs the identity the gateway forwards to services (Secret `auth`)",
    )
    log_level: str = Field(
        default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="log level"
    )
    log_json: bool = Field(default=True, description="JSON log lines (false: plain text)")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="time to finish in-flight work on SIGTERM"
    )
    max_deliver: int = Field(
        default=5, ge=1, description="deliveries of an event before it is dead-lettered"
    )
    redelivery_backoff: tuple[float, ...] = Field(
        default=(0.5, 2.0, 10.0, 30.0),
        description="seconds before each redelivery of a failed event (JSON list)",
    )
    redis_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="socket timeout of each Redis command: a stalled Redis fails the call "
        "quickly instead of hanging it",
    )
    redis_retries: int = Field(
        default=1, ge=0, le=3, description="retries of a Redis command that timed out"
    )
    mongo_timeout_seconds: float = Field(
        default=10.0, gt=0, description="socket timeout of each MongoDB operation"
    )
    stream_storage_bytes: int = Field(
        default=512 << 20,
        ge=1 << 20,
        description="bytes the event streams may hold together (each stream a fixed share); "
        "JetStream reserves them on its volume, so keep this at most about half of it",
    )
    stream_watch_seconds: float = Field(
        default=15.0, gt=0, description="how often the JetStream streams' usage is read"
    )
    stream_warn_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="share of a stream's size limit above which /readyz warns",
    )
    otlp_endpoint: str = Field(
        default="",
        # the standard variable too, so a cluster's usual OpenTelemetry setup just works
        validation_alias=AliasChoices("RHIME_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="base URL of an OTLP/HTTP collector (e.g. http://otel-collector:4318) to "
        "export traces to; empty: tracing is off (also read from OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    outbox_relay_seconds: float = Field(
        default=2.0, gt=0, description="how often staged events left by a crash are relayed"
    )

    def service_url(self, name: str) -> str:
        """Base URL of another component: an override, else the template."""
        from rhime import catalogue

        return self.service_urls.get(name) or catalogue.service_url(name, self.service_url_template)

    def database_name(self, database: str) -> str:
        from rhime import grants

        return grants.mongo_database(namespace=self.namespace, database=database)

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's namespace."""
        return ":".join((self.namespace, *parts))

    def subject(self, name: str) -> str:
        """A NATS subject under this deployment's namespace."""
        return f"{self.namespace}.{name}"
