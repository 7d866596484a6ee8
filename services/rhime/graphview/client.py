"""Calling user-graph-view: a channel per process, and a user's followers or followees as an
async stream of id batches.

    async with graphview_client.channel(settings) as ch:
        async for ids in graphview_client.followers(channel=ch, user_id=uid):
            ...

Every call carries the calling component's signed identity in `x-rhime-identity` metadata,
as HTTP calls between components do. Errors arrive as `grpc.aio.AioRpcError` (e.g.
`INVALID_ARGUMENT` for a malformed id, `UNAUTHENTICATED` without a valid identity,
`UNAVAILABLE` when the server is down).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from rhime.graphview.proto import graphview_pb2, graphview_pb2_grpc
from rhime.kit import identity, logs, traces
from rhime.kit.settings import Settings


def target(settings: Settings) -> str:
    """host:port of user-graph-view from the service URL template."""
    url = settings.service_url("user-graph-view")
    return url.split("://", 1)[-1]


class _SignedCalls(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    """Adds a fresh identity of the calling component to every call (tokens are short-lived,
    the channel is not)."""

    def __init__(self, settings: Settings, tracing: traces.Tracing | None) -> None:
        self._caller = identity.Identity(user_id="", service=settings.component or "rhime")
        self._secret = settings.internal_secret.get_secret_value()
        self._tracing = tracing

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        token = identity.encode(self._caller, secret=self._secret)
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        metadata.add(identity.HEADER, token)
        rid = logs.request_id.get()
        if rid:
            metadata.add(logs.HEADER, rid)
        if self._tracing is None:
            return await continuation(client_call_details._replace(metadata=metadata), request)
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        # a child of the caller's span (a request's, an event handler's), and the server
        # span's parent; it lasts until the stream ends, not until the call is sent
        span = self._tracing.start(
            name,
            kind=traces.SpanKind.CLIENT,
            parent=None,
            attributes={"rpc.system": "grpc", **({traces.REQUEST_ID: rid} if rid else {})},
        )
        carrier: dict[str, str] = {}
        traces.inject(carrier, span)
        for key, value in carrier.items():
            metadata.add(key, value)
        try:
            call = await continuation(client_call_details._replace(metadata=metadata), request)
        except BaseException:
            span.set_status(traces.Status(traces.StatusCode.ERROR))
            span.end()
            raise
        return _spanned(call, span)


async def _spanned(call: Any, span: traces.Span) -> AsyncIterator[Any]:
    """The call's replies; its span ends with the stream, an error status marking it."""
    try:
        async for reply in call:
            yield reply
    except grpc.aio.AioRpcError as exc:
        span.set_attribute("rpc.grpc.status_code", exc.code().value[0])
        span.set_status(traces.Status(traces.StatusCode.ERROR, exc.code().name))
        raise
    finally:
        if not call.done():
            call.cancel()  # the caller stopped reading early
        span.end()


def channel(settings: Settings, *, tracing: traces.Tracing | None = None) -> grpc.aio.Channel:
    """One long-lived channel (HTTP/2, multiplexed); keep it for the process's lifetime.
    With `tracing`, calls carry the caller's trace context."""
    return grpc.aio.insecure_channel(
        target(settings),
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 1),
        ],
        interceptors=[_SignedCalls(settings, tracing)],  # type: ignore[list-item]  # stubs lag grpc
    )


async def followers(
    *,
    channel: grpc.aio.Channel,
    user_id: str,
    batch_size: int = 500,
    timeout: float | None = None,
) -> AsyncIterator[list[str]]:
    """Everyone who follows `user_id`, ascending, in batches of at most `batch_size`."""
    stub = graphview_pb2_grpc.UserGraphViewStub(channel)
    request = graphview_pb2.UserRequest(user_id=user_id, batch_size=batch_size)
    async for batch in stub.Followers(request, timeout=timeout):
        yield list(batch.user_ids)


async def followees(
    *,
    channel: grpc.aio.Channel,
    user_id: str,
    batch_size: int = 500,
    timeout: float | None = None,
) -> AsyncIterator[list[str]]:
    """Everyone `user_id` follows, ascending, in batches of at most `batch_size`."""
    stub = graphview_pb2_grpc.UserGraphViewStub(channel)
    request = graphview_pb2.UserRequest(user_id=user_id, batch_size=batch_size)
    async for batch in stub.Followees(request, timeout=timeout):
        yield list(batch.user_ids)


async def followees_of(
    *,
    channel: grpc.aio.Channel,
    user_ids: Sequence[str],
    limit: int = 1000,
    timeout: float | None = None,
) -> AsyncIterator[tuple[str, list[str], bool]]:
    """Whom each of `user_ids` follows: (user, ids ascending and cut at `limit`, whether cut),
    in request order."""
    stub = graphview_pb2_grpc.UserGraphViewStub(channel)
    request = graphview_pb2.UsersRequest(user_ids=list(user_ids), limit=limit)
    async for reply in stub.FolloweesOf(request, timeout=timeout):
        yield reply.user_id, list(reply.user_ids), reply.truncated
