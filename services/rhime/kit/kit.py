"""The component's handle on its connections and settings (`app.state.kit`), in a module of
its own so that the kit's parts and every service can name it without importing the app
factory."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

import aiohttp
import redis.asyncio as aioredis
from fastapi import Depends, Request

from rhime.kit import bus as bus_module
from rhime.kit import errors, metrics, supervisor, traces
from rhime.kit.settings import Settings


@dataclasses.dataclass(kw_only=True)
class Kit:
    """The component's connections and settings, on `app.state.kit`."""

    settings: Settings
    metrics: metrics.Metrics
    database_name: str | None
    uses_redis: bool
    uses_nats: bool
    mongo: Any = None  # motor client
    redis: aioredis.Redis = dataclasses.field(default=None)  # type: ignore[assignment]
    bus: bus_module.Bus | None = None
    http: aiohttp.ClientSession = dataclasses.field(default=None)  # type: ignore[assignment]
    # None when no OTLP endpoint is configured: tracing off costs nothing
    tracing: traces.Tracing | None = None
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # the outbox relay and the component's `tasks`, restarted when they fail
    tasks: supervisor.Supervisor = dataclasses.field(default_factory=supervisor.Supervisor)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def database(self) -> Any:
        """The component's Mongo database (motor)."""
        if self.mongo is None or self.database_name is None:
            raise RuntimeError("this component has no database")
        return self.mongo[self.database_name]

    def require_bus(self) -> bus_module.Bus:
        if self.bus is None:
            raise errors.unavailable("The event bus is not connected yet.")
        return self.bus

    def key(self, *parts: str) -> str:
        return self.settings.key(*parts)


def get_kit(request: Request) -> Kit:
    kit: Kit = request.app.state.kit
    return kit


KitDep = Annotated[Kit, Depends(get_kit)]
