"""user-graph-view over real gRPC: batches, ordering, errors and the health service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.graph import edges
from rhime.graphview import client, codegen, server
from rhime.graphview.proto import health_pb2, health_pb2_grpc
from rhime.kit import traces
from rhime.runtime import otlpsink
from tests.support import eventually


@pytest.fixture
async def view(make_settings: Callable[..., Any]) -> AsyncIterator[tuple[Any, grpc.aio.Channel]]:
    settings = make_settings(server.Settings, host="127.0.0.1", port=0, max_batch=50)
    running = await server.start(settings)
    mongo: Any = AsyncIOMotorClient(settings.mongo_url)
    caller = make_settings(
        service_urls={"user-graph-view": f"http://127.0.0.1:{running.port}"}, component="feed"
    )
    channel = client.channel(caller)
    try:
        yield mongo[settings.database_name("graph")], channel
    finally:
        await channel.close()
        await running.stop(0)
        mongo.close()


def oid() -> str:
    return str(ObjectId())


async def collect(stream: AsyncIterator[list[str]]) -> list[list[str]]:
    return [batch async for batch in stream]


async def test_streams_followers_and_followees_in_batches(view: Any) -> None:
    db, channel = view
    star = oid()
    fans = sorted(oid() for _ in range(23))
    for fan in [*fans, star]:
        await edges.add_user(db, user_id=fan, user_name="n" + fan[-4:])
    for fan in fans:
        await edges.transition(db, follower=fan, followee=star, active=True)
    await edges.transition(db, follower=star, followee=fans[0], active=True)
    # an unfollow leaves an inactive edge that must not be streamed
    await edges.transition(db, follower=fans[1], followee=star, active=False)

    batches = await collect(client.followers(channel=channel, user_id=star, batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 2]
    assert [i for b in batches for i in b] == [f for f in fans if f != fans[1]]

    assert await collect(client.followees(channel=channel, user_id=star)) == [[fans[0]]]
    assert await collect(client.followees(channel=channel, user_id=fans[2])) == [[star]]
    assert await collect(client.followers(channel=channel, user_id=oid())) == []


async def test_batch_size_is_capped_by_the_server(view: Any) -> None:
    db, channel = view
    star = oid()
    await edges.add_user(db, user_id=star, user_name="star")
    for _ in range(60):
        await edges.transition(db, follower=oid(), followee=star, active=True)
    batches = await collect(client.followers(channel=channel, user_id=star, batch_size=10_000))
    assert [len(b) for b in batches] == [50, 10]


async def test_invalid_user_id_is_rejected(view: Any) -> None:
    _, channel = view
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(client.followers(channel=channel, user_id="not-an-id"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_check(view: Any) -> None:
    _, channel = view
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=server.SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_channel_target_comes_from_the_catalogue(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(service_url_template="http://{name}.rhime.svc:{port}")
    assert client.target(settings) == "user-graph-view.rhime.svc:8110"


async def test_a_traced_call_has_a_client_span_for_its_whole_stream(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's client span is the server span's parent and ends with the stream; a
    refused call marks it with the gRPC status."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with otlpsink.Sink() as sink:
        settings = make_settings(
            server.Settings,
            component="user-graph-view",
            host="127.0.0.1",
            port=0,
            otlp_endpoint=sink.url,
        )
        running = await server.start(settings)
        caller = make_settings(
            service_urls={"user-graph-view": f"http://127.0.0.1:{running.port}"},
            component="feed",
            otlp_endpoint=sink.url,
        )
        tracing = traces.create(caller)
        assert tracing is not None
        channel = client.channel(caller, tracing=tracing)
        try:
            user = oid()
            with tracing.span("handle", kind=traces.SpanKind.INTERNAL):
                assert await collect(client.followers(channel=channel, user_id=user)) == []
                with pytest.raises(grpc.aio.AioRpcError):
                    await collect(client.followees(channel=channel, user_id="not-an-id"))
        finally:
            await channel.close()
            await running.stop(0)
            tracing.shutdown()

        async def exported() -> list[otlpsink.Span]:
            spans = sink.spans()
            assert len(spans) >= 5, spans
            return spans

        spans = await eventually(exported)
    by = {(s.service, s.kind, s.name.rsplit("/", 1)[-1]): s for s in spans}
    handle = by["feed", "internal", "handle"]
    calls = by["feed", "client", "Followers"], by["feed", "client", "Followees"]
    served = (
        by["user-graph-view", "server", "Followers"],
        by["user-graph-view", "server", "Followees"],
    )
    for call, answer in zip(calls, served, strict=True):
        assert call.parent_id == handle.span_id
        assert answer.parent_id == call.span_id
        assert call.trace_id == answer.trace_id == handle.trace_id
    assert "rpc.grpc.status_code" not in calls[0].attributes
    assert calls[1].attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_the_generated_modules_are_what_the_sources_make(tmp_path: Path) -> None:
    """The build generates them; what is in the tree must not lag an edited `.proto`."""
    made = codegen.generate(tmp_path)
    assert sorted(p.name for p in made) == sorted(
        p.name for s in codegen.SOURCES for p in codegen.outputs(s)
    )
    for path in made:
        assert path.read_bytes() == (codegen.HERE / path.name).read_bytes(), path.name
