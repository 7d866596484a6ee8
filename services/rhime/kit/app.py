"""`create_app(settings, ...)`: a FastAPI app with everything a Rhime component needs.

Connections are made in the background after the server starts, so a component started
before its dependencies serves `/healthz`, reports not-ready on `/readyz`, and becomes ready
when they appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import IndexModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rhime import catalogue, grants
from rhime.kit import batches, errors, logs, metrics, outbox, stores, traces
from rhime.kit import bus as bus_module
from rhime.kit.kit import Kit as Kit
from rhime.kit.kit import KitDep as KitDep
from rhime.kit.kit import Resource as Resource
from rhime.kit.kit import get_kit as get_kit
from rhime.kit.settings import Settings

log = logging.getLogger("rhime.kit")

SubscriptionsFactory = Callable[
    ["Kit"], Sequence[bus_module.Subscription[Any] | batches.Batches[Any]]
]
Task = Callable[["Kit"], Coroutine[Any, Any, None]]


def create_app(
    settings: Settings,
    *,
    title: str,
    database: str | None = None,
    redis: bool = True,
    nats: bool = True,
    routers: Sequence[APIRouter] = (),
    indexes: Mapping[str, Sequence[IndexModel]] | None = None,
    subscriptions: SubscriptionsFactory | None = None,
    outboxes: Sequence[str] = (),
    tasks: Sequence[Task] = (),
    on_ready: Sequence[Task] = (),
    resources: Sequence[Resource[Any]] = (),
    description: str = "",
    api_prefix: str | None = None,
    max_body_bytes: int = 1_000_000,
) -> FastAPI:
    """Build a component. `subscriptions` returns the event consumers (given the kit);
    `outboxes` are collections whose staged events the kit relays; `tasks` run for the app's
    lifetime once ready; `on_ready` run once when the dependencies are reachable;
    `resources` are the component's own clients, opened with the app and closed with it.
    With `api_prefix`, the OpenAPI docs live under it (so they are reachable through the
    gateway, e.g. /api/posts/docs)."""
    kit = Kit(
        settings=settings,
        metrics=metrics.create(),
        database_name=settings.database_name(database) if database else None,
        uses_redis=redis,
        uses_nats=nats,
        tracing=traces.create(settings),
    )
    index_map = dict(indexes or {})
    for name in outboxes:
        index_map.setdefault(name, [])
        index_map[name] = [*index_map[name], IndexModel([(f"{outbox.FIELD}.id", 1)])]
    plan = _Plan(
        title=title,
        indexes=index_map,
        subscriptions=subscriptions,
        outboxes=tuple(outboxes),
        tasks=tuple(tasks),
        on_ready=tuple(on_ready),
        resources=tuple(resources),
    )
    app = FastAPI(
        title=title,
        description=description,
        lifespan=functools.partial(_lifespan, kit=kit, plan=plan),
        version="0.1.0",
        docs_url=f"{api_prefix}/docs" if api_prefix else None,
        redoc_url=None,
        openapi_url=f"{api_prefix}/openapi.json" if api_prefix else None,
    )
    app.state.kit = kit
    app.state.subscriptions = subscriptions  # what it consumes, for checks against the catalogue
    errors.install(
        app,
        on_store_down=lambda exc: kit.metrics.store_unavailable.labels(errors.store_of(exc)).inc(),
    )
    app.add_middleware(_Observe, kit=kit, max_body_bytes=max_body_bytes)
    app.include_router(_probes(kit))
    for router in routers:
        app.include_router(router)
    return app


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Plan:
    """What a component declared it runs, beside its connections."""

    title: str
    indexes: Mapping[str, Sequence[IndexModel]]
    subscriptions: SubscriptionsFactory | None
    outboxes: tuple[str, ...]
    tasks: tuple[Task, ...]
    on_ready: tuple[Task, ...]
    resources: tuple[Resource[Any], ...]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, *, kit: Kit, plan: _Plan) -> AsyncIterator[None]:
    # one "open, then close when the app stops" per resource; closed in reverse order
    async with contextlib.AsyncExitStack() as stack:
        await _open(kit, plan=plan, stack=stack)
        starter = asyncio.create_task(_start(kit, plan=plan), name="connect")
        stack.push_async_callback(_stop, kit, starter)
        yield


async def _open(kit: Kit, *, plan: _Plan, stack: contextlib.AsyncExitStack) -> None:
    """The clients; nothing here waits for a server (connections are made in `_start`)."""
    settings = kit.settings
    if kit.tracing is not None:  # closed last: it exports the spans of everything before
        stack.push_async_callback(asyncio.to_thread, kit.tracing.shutdown)
    if kit.database_name is not None:
        kit.mongo = stores.mongo(settings, appname=settings.component or plan.title)
        stack.callback(kit.mongo.close)
    if kit.uses_redis:
        kit.redis = stores.redis(settings)
        stack.push_async_callback(kit.redis.aclose)
    kit.http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=60),
        json_serialize=lambda o: orjson.dumps(o).decode(),
    )
    stack.push_async_callback(kit.http.close)
    for resource in plan.resources:
        stack.callback(kit.opened.pop, resource, None)  # after it closes: no longer handed out
        kit.opened[resource] = await stack.enter_async_context(resource.open(kit))


async def _start(kit: Kit, *, plan: _Plan) -> None:
    """In the background: connect, then run what the component declared; ready after."""
    await _connect(kit, plan.indexes, plan.subscriptions)
    for hook in plan.on_ready:
        await hook(kit)
    if plan.outboxes:
        kit.tasks.start("outbox-relay", lambda: outbox.relay(kit, collections=plan.outboxes))
    for task in plan.tasks:
        kit.tasks.start(getattr(task, "__name__", "task"), functools.partial(task, kit))
    kit.ready.set()
    log.info("ready")


def _probes(kit: Kit) -> APIRouter:
    """Liveness, readiness and metrics, outside the API docs."""
    probes = APIRouter(include_in_schema=False)

    @probes.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @probes.get("/readyz")
    async def readyz() -> Response:
        problems = await _check(kit)
        if problems:
            return errors.envelope(503, [{"msg": p} for p in problems])
        # A stream near its limit is a warning, not unreadiness: taking every pod out of
        # service would turn "new events wait in the outbox" into "the site is down".
        warnings = kit.bus.warnings() if kit.bus is not None else []
        return JSONResponse({"status": "ready", "warnings": warnings})

    @probes.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(kit.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return probes


async def _stop(kit: Kit, starter: asyncio.Task[None]) -> None:
    """Stop consuming (letting batches in hand finish, up to the grace), then the tasks,
    before any connection they use is closed."""
    starter.cancel()
    if kit.bus is not None:
        await kit.bus.close(grace=kit.settings.shutdown_grace_seconds)
    await kit.tasks.stop()
    await asyncio.gather(starter, return_exceptions=True)


async def ensure_indexes(database: Any, indexes: Mapping[str, Sequence[IndexModel]]) -> None:
    """Create the indexes a collection lacks. Only the missing ones are sent: FerretDB 1.x
    panics on a createIndexes of several indexes that all exist, which is every restart."""
    for collection, models in indexes.items():
        existing = {index["name"] async for index in database[collection].list_indexes()}
        missing = [m for m in models if m.document["name"] not in existing]
        if missing:
            await database[collection].create_indexes(missing)


async def _connect(
    kit: Kit,
    indexes: Mapping[str, Sequence[IndexModel]],
    subscriptions: SubscriptionsFactory | None,
) -> None:
    """Reach every dependency, retrying with backoff until each answers."""
    delay = 0.2
    while True:
        try:
            if kit.mongo is not None:
                await kit.mongo.admin.command("ping")
                await ensure_indexes(kit.database, indexes)
            if kit.redis is not None:
                await kit.redis.ping()
            if kit.uses_nats and kit.bus is None:
                kit.bus = await bus_module.Bus.connect(
                    url=kit.settings.nats_url,
                    name=kit.settings.component or "rhime",
                    namespace=kit.settings.namespace,
                    metrics=kit.metrics,
                    max_deliver=kit.settings.max_deliver,
                    backoff=kit.settings.redelivery_backoff,
                    stream_watch_seconds=kit.settings.stream_watch_seconds,
                    stream_warn_ratio=kit.settings.stream_warn_ratio,
                    stream_storage_bytes=kit.settings.stream_storage_bytes,
                    tracing=kit.tracing,
                )
            if kit.bus is not None:
                await kit.bus.ensure_streams()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("dependencies not reachable yet (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    if kit.bus is not None:
        component = catalogue.BY_NAME.get(kit.settings.component or "")
        downstream = (
            grants.downstream(component, namespace=kit.settings.namespace) if component else []
        )
        kit.bus.watch_streams(downstream=downstream)
    if subscriptions is not None and kit.bus is not None:
        for sub in subscriptions(kit):
            kit.bus.start(sub, component=kit.settings.component or "rhime")


async def _check(kit: Kit) -> list[str]:
    if not kit.ready.is_set():
        return ["starting: dependencies not reachable yet"]
    problems = []

    async def probe(name: str, check: Callable[[], Awaitable[object]]) -> None:
        try:
            await asyncio.wait_for(check(), timeout=1.5)
        except Exception:
            problems.append(f"{name} is not reachable")

    checks = []
    if kit.mongo is not None:
        checks.append(probe("mongodb", lambda: kit.mongo.admin.command("ping")))
    if kit.redis is not None:
        checks.append(probe("redis", kit.redis.ping))
    await asyncio.gather(*checks)
    if kit.bus is not None:
        if not kit.bus.nc.is_connected:
            problems.append("nats is not reachable")
        problems.extend(kit.bus.problems())
    problems.extend(kit.tasks.problems())
    return problems


_UNOBSERVED = frozenset({"/metrics", "/healthz", "/readyz"})


class _Observe:
    """Request id, access metrics and the body size limit, as plain ASGI (cheaper than
    BaseHTTPMiddleware on every request)."""

    def __init__(self, app: ASGIApp, *, kit: Kit, max_body_bytes: int) -> None:
        self.app = app
        self.kit = kit
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(logs.HEADER.encode(), b"").decode("latin-1")[:64] or logs.new_request_id()
        token = logs.request_id.set(rid)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await errors.envelope(413, [{"msg": errors.message(413)}])(scope, receive, send)
            logs.request_id.reset(token)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (logs.HEADER.encode(), rid.encode()),
                ]
            await send(message)

        tracing = self.kit.tracing
        # probes and scrapes, every few seconds, would bury the traces worth reading
        if tracing is None or scope["path"] in _UNOBSERVED:
            span_context: contextlib.AbstractContextManager[traces.Span | None] = traces.OFF
        else:
            span_context = _server_span(tracing, scope, headers)
        with span_context as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                method = scope["method"]
                if path not in _UNOBSERVED:
                    self.kit.metrics.requests.labels(method, path, str(status)).inc()
                    self.kit.metrics.latency.labels(method, path).observe(
                        time.perf_counter() - started
                    )
                if span is not None:
                    span.update_name(f"{method} {path}")  # the template is known only now
                    span.set_attribute("http.route", path)
                    traces.set_status(span, status)
                logs.request_id.reset(token)


def _server_span(
    tracing: traces.Tracing, scope: Scope, headers: Mapping[bytes, bytes]
) -> contextlib.AbstractContextManager[traces.Span]:
    """The request's span, a child of the caller's when it sent a `traceparent`."""
    carrier = {
        name: headers[name.encode()].decode("latin-1")
        for name in (traces.TRACEPARENT, traces.TRACESTATE)
        if name.encode() in headers
    }
    return tracing.span(
        scope["method"],
        kind=traces.SpanKind.SERVER,
        parent=traces.extract(carrier),
        attributes={"http.request.method": scope["method"]},
    )
