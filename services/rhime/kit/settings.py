"""Settings shared by every component; each component subclasses them for its own."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_NAMESPACE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class Settings(BaseSettings):
    """Read from `RHIME_*` environment variables (Kubernetes injects them from ConfigMaps and
    Secrets; the local runner sets them per process)."""

    model_config = SettingsConfigDict(env_prefix="RHIME_", extra="ignore", frozen=True)

    component: str = ""
    # Logical prefix for database names, Redis keys and NATS subjects: isolates deployments
    # (and tests) that share servers.
    namespace: str = Field(default="rhime", pattern=_NAMESPACE.pattern)
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    # How components find each other; `{name}` and `{port}` come from the catalogue.
    service_url_template: str = "http://{name}:{port}"
    # Signs the identity the gateway forwards to services (and services to each other).
    internal_secret: SecretStr = Field(min_length=32)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Consumers: redeliveries before a message goes to the dead-letter subject.
    max_deliver: int = Field(default=5, ge=1)
    redelivery_backoff: tuple[float, ...] = (0.5, 2.0, 10.0, 30.0)
    outbox_relay_seconds: float = Field(default=2.0, gt=0)

    def database_name(self, database: str) -> str:
        return f"{self.namespace}_{database}"

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's namespace."""
        return ":".join((self.namespace, *parts))

    def subject(self, name: str) -> str:
        """A NATS subject under this deployment's namespace."""
        return f"{self.namespace}.{name}"
