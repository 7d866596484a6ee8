"""user-graph-view: gRPC server streaming a user's followers or followees in batches.

It reads the `graph` database as user-graph writes it (see `rhime.graph.edges`), one Mongo
cursor per call, so a list of a million ids is many small messages, never one big one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import jwt
from pydantic import Field

from rhime.graph import edges
from rhime.graphview.proto import graphview_pb2, graphview_pb2_grpc, health_pb2, health_pb2_grpc
from rhime.kit import identity, ids, logs, stores, traces
from rhime.kit.settings import Settings as KitSettings

log = logging.getLogger("rhime.graphview")
SERVICE_NAME = "rhime.graphview.v1.UserGraphView"


class Settings(KitSettings):
    default_batch: int = Field(
        default=500, ge=1, description="user ids per streamed message when the caller sets no size"
    )
    max_batch: int = Field(
        default=5000, ge=1, description="most user ids per streamed message, whatever is asked"
    )
    max_users: int = Field(
        default=500, ge=1, description="most users one FolloweesOf call may ask about"
    )
    default_followees_limit: int = Field(
        default=1000, ge=1, description="ids per user from FolloweesOf when the caller sets none"
    )


class UserGraphView(graphview_pb2_grpc.UserGraphViewServicer):
    def __init__(self, *, database: Any, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._secret = settings.internal_secret.get_secret_value()

    async def _stream(
        self,
        request: graphview_pb2.UserRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        direction: edges.Direction,
    ) -> AsyncIterator[graphview_pb2.UserBatch]:
        await self._require_component(context)
        if not ids.is_object_id(request.user_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid userId")
        size = request.batch_size or self.settings.default_batch
        if size < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid batch_size")
        size = min(size, self.settings.max_batch)
        async for batch in edges.stream(
            self.database, user_id=request.user_id, direction=direction, batch_size=size
        ):
            yield graphview_pb2.UserBatch(user_ids=batch)

    async def _require_component(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Only components may ask, signed as HTTP calls between them are: the port is
        reachable by whatever the network lets through, the secret only by components."""
        metadata = {k: v for k, v in (context.invocation_metadata() or ())}
        token = metadata.get(identity.HEADER)
        try:
            caller = identity.decode(str(token or ""), secret=self._secret)
        except jwt.InvalidTokenError:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "Not authenticated")
        if not caller.service:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "For components only")

    async def Followers(
        self,
        request: graphview_pb2.UserRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[graphview_pb2.UserBatch]:
        # grpc.aio streams only from handlers that are themselves async generators
        async for batch in self._stream(request, context, "followers"):
            yield batch

    async def Followees(
        self,
        request: graphview_pb2.UserRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[graphview_pb2.UserBatch]:
        # grpc.aio streams only from handlers that are themselves async generators
        async for batch in self._stream(request, context, "following"):
            yield batch

    async def FolloweesOf(
        self,
        request: graphview_pb2.UsersRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[graphview_pb2.UserFollowees]:
        users = list(request.user_ids)
        if len(users) > self.settings.max_users:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Too many user_ids")
        if not all(ids.is_object_id(u) for u in users):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid userId")
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid limit")
        limit = min(request.limit or self.settings.default_followees_limit, self.settings.max_batch)
        for user_id in users:
            found: list[str] = []
            truncated = False
            # one extra id tells a list cut at the limit from one that fits exactly
            async for batch in edges.stream(
                self.database, user_id=user_id, direction="following", batch_size=limit + 1
            ):
                found += batch
                if len(found) > limit:
                    truncated = True
                    break
            yield graphview_pb2.UserFollowees(
                user_id=user_id, user_ids=found[:limit], truncated=truncated
            )


class Health(health_pb2_grpc.HealthServicer):
    """grpc.health.v1.Health/Check: serving while MongoDB answers (the readiness probe)."""

    def __init__(self, *, mongo: Any) -> None:
        self.mongo = mongo

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> health_pb2.HealthCheckResponse:
        status = health_pb2.HealthCheckResponse
        if request.service not in ("", SERVICE_NAME):
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        try:
            await asyncio.wait_for(self.mongo.admin.command("ping"), timeout=1.5)
        except Exception:
            return status(status=status.NOT_SERVING)
        return status(status=status.SERVING)


class _Traced(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # stubs lag grpc
    """A server span per UserGraphView call, a child of the caller's (its `traceparent`
    metadata); the health checks are left out."""

    def __init__(self, tracing: traces.Tracing) -> None:
        self.tracing = tracing

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_stream is None:
            return handler
        metadata = {
            k: v for k, v in handler_call_details.invocation_metadata or () if isinstance(v, str)
        }
        behavior: Callable[[Any, Any], AsyncIterator[Any]] = handler.unary_stream
        tracing = self.tracing
        attributes = {"rpc.system": "grpc", "rpc.method": method}
        if metadata.get(logs.HEADER):
            attributes[traces.REQUEST_ID] = metadata[logs.HEADER][:64]

        async def traced(request: Any, context: Any) -> AsyncIterator[Any]:
            # not a current span: it would be set and reset in different steps of the stream
            span = tracing.start(
                method,  # /rhime.graphview.v1.UserGraphView/<Method>: bounded
                kind=traces.SpanKind.SERVER,
                parent=traces.extract(metadata),
                attributes=attributes,
            )
            try:
                async for reply in behavior(request, context):
                    yield reply
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(traces.Status(traces.StatusCode.ERROR))
                raise
            finally:
                span.end()

        return grpc.unary_stream_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclasses.dataclass
class Running:
    server: grpc.aio.Server
    port: int
    mongo: Any
    tracing: traces.Tracing | None = None

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)
        self.mongo.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


async def start(settings: Settings) -> Running:
    """Start serving on `settings.host:settings.port` (port 0 picks a free one)."""
    mongo: Any = stores.mongo(settings, appname=settings.component or "user-graph-view")
    database = mongo[settings.database_name("graph")]
    tracing = traces.create(settings)
    server = grpc.aio.server(
        interceptors=[_Traced(tracing)] if tracing is not None else None,
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.max_concurrent_streams", 1000),
        ],
    )
    graphview_pb2_grpc.add_UserGraphViewServicer_to_server(
        UserGraphView(database=database, settings=settings), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(Health(mongo=mongo), server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    log.info("serving gRPC on port %d", port)
    return Running(server=server, port=port, mongo=mongo, tracing=tracing)


async def create(settings: Settings) -> int:
    """The catalogue's entrypoint: serve until SIGTERM or SIGINT, then finish open streams
    within the shutdown grace."""
    running = await start(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping")
    await running.stop(settings.shutdown_grace_seconds)
    return 0
