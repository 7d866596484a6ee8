"""user-graph-view answers components only: a call must carry a valid signed identity of a
component in its metadata; the health service stays open for probes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from bson import ObjectId

from rhime.graphview import client, server
from rhime.graphview.proto import graphview_pb2, graphview_pb2_grpc, health_pb2, health_pb2_grpc
from rhime.kit import identity
from tests.support import SECRET


@pytest.fixture
async def stub(make_settings: Callable[..., Any]) -> AsyncIterator[Any]:
    running = await server.start(make_settings(server.Settings, host="127.0.0.1", port=0))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield graphview_pb2_grpc.UserGraphViewStub(channel), channel, running.port
    finally:
        await channel.close()
        await running.stop(0)


async def _followers(stub: Any, metadata: tuple[tuple[str, str], ...]) -> list[Any]:
    request = graphview_pb2.UserRequest(user_id=str(ObjectId()))
    return [b async for b in stub.Followers(request, metadata=metadata)]


def _token(who: identity.Identity, secret: str = SECRET) -> tuple[tuple[str, str], ...]:
    return ((identity.HEADER, identity.encode(who, secret=secret)),)


async def test_a_call_without_a_valid_component_identity_is_refused(stub: Any) -> None:
    views, _, _ = stub
    component = identity.Identity(user_id="", service="feed")
    refusals = {
        (): grpc.StatusCode.UNAUTHENTICATED,
        ((identity.HEADER, "not-a-token"),): grpc.StatusCode.UNAUTHENTICATED,
        _token(component, secret="x" * 40): grpc.StatusCode.UNAUTHENTICATED,
        _token(identity.Identity(user_id=str(ObjectId()))): grpc.StatusCode.PERMISSION_DENIED,
    }
    for metadata, code in refusals.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _followers(views, metadata)
        assert refused.value.code() is code, metadata
    assert await _followers(views, _token(component)) == []


async def test_the_client_signs_its_calls_and_health_stays_open(
    stub: Any, make_settings: Callable[..., Any]
) -> None:
    _, channel, port = stub
    settings = make_settings(
        component="recommendation", service_urls={"user-graph-view": f"http://127.0.0.1:{port}"}
    )
    async with client.channel(settings) as signed:
        assert [b async for b in client.followers(channel=signed, user_id=str(ObjectId()))] == []
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
