"""Who a user follows, from user-graph-view, so they are never recommended to them."""

from __future__ import annotations

import logging

import grpc

from rhime.graphview import client as graphview

log = logging.getLogger("rhime.recommendation.follows")

MAX_FOLLOWEES = 20_000  # beyond this the list is cut (it only hides recommendations)


async def followees(channel: grpc.aio.Channel | None, *, user_id: str) -> set[str]:
    """The ids `user_id` follows; empty (with a warning) when the graph view cannot answer,
    since recommendations are filtered again when they are read."""
    if channel is None:
        return set()
    found: set[str] = set()
    try:
        async for batch in graphview.followees(
            channel=channel, user_id=user_id, batch_size=1000, timeout=10.0
        ):
            found.update(batch)
            if len(found) >= MAX_FOLLOWEES:
                break
    except grpc.aio.AioRpcError as exc:
        log.warning("user-graph-view did not answer for %s: %s", user_id, exc.code())
    return found
