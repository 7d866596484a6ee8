"""The component's handle on its connections and settings (`app.state.kit`), in a module of
its own so that the kit's parts and every service can name it without importing the app
factory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import aiohttp
import redis.asyncio as aioredis
from fastapi import Depends, Request

from rhime.kit import bus as bus_module
from rhime.kit import errors, metrics, supervisor, traces
from rhime.kit.settings import Settings

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """A client of the component's own (a connection pool, a gRPC channel, a metric): given
    to `create_app(resources=...)`, it is opened with the app by `open(kit)` (an async
    context manager) and closed when the app stops; code reads it, typed, with
    `kit.resource(R)`. The object is only a name: nothing is opened at import time."""

    name: str
    open: Callable[[Kit], contextlib.AbstractAsyncContextManager[T]]


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
    opened: dict[Resource[Any], Any] = dataclasses.field(default_factory=dict)

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

    def resource(self, resource: Resource[T]) -> T:
        if resource not in self.opened:
            raise RuntimeError(f"{resource.name} is not open in this component")
        found: T = self.opened[resource]
        return found


def get_kit(request: Request) -> Kit:
    kit: Kit = request.app.state.kit
    return kit


KitDep = Annotated[Kit, Depends(get_kit)]
