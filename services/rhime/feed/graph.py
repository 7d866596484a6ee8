"""Followers and followees from user-graph-view over gRPC, on one channel per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from rhime.graphview import client

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

_CHANNEL = "graph_channel"


def _channel(kit: Kit) -> grpc.aio.Channel:
    found: grpc.aio.Channel | None = kit.extras.get(_CHANNEL)
    if found is None:
        found = client.channel(kit.settings, tracing=kit.tracing)
        kit.extras[_CHANNEL] = found
    return found


async def hold(kit: Kit) -> None:
    """A kit task: closes the channel when the app stops."""
    try:
        await asyncio.Event().wait()
    finally:
        found: grpc.aio.Channel | None = kit.extras.pop(_CHANNEL, None)
        if found is not None:
            await found.close(None)


def followers(kit: Kit, *, user_id: str, batch_size: int) -> AsyncIterator[list[str]]:
    return client.followers(
        channel=_channel(kit), user_id=user_id, batch_size=batch_size, timeout=120
    )


def followees(kit: Kit, *, user_id: str, batch_size: int) -> AsyncIterator[list[str]]:
    return client.followees(
        channel=_channel(kit), user_id=user_id, batch_size=batch_size, timeout=30
    )
