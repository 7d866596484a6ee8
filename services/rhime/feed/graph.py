"""Followers and followees from user-graph-view over gRPC, on one channel per process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from rhime.graphview import client
from rhime.kit.kit import Resource

if TYPE_CHECKING:
    from rhime.kit.kit import Kit


@contextlib.asynccontextmanager
async def _open(kit: Kit) -> AsyncIterator[grpc.aio.Channel]:
    channel = client.channel(kit.settings, tracing=kit.tracing)
    try:
        yield channel
    finally:
        await channel.close(None)


CHANNEL = Resource("graph-channel", open=_open)


def _channel(kit: Kit) -> grpc.aio.Channel:
    return kit.resource(CHANNEL)


def followers(kit: Kit, *, user_id: str, batch_size: int) -> AsyncIterator[list[str]]:
    return client.followers(
        channel=_channel(kit), user_id=user_id, batch_size=batch_size, timeout=120
    )


def followees(kit: Kit, *, user_id: str, batch_size: int) -> AsyncIterator[list[str]]:
    return client.followees(
        channel=_channel(kit), user_id=user_id, batch_size=batch_size, timeout=30
    )
