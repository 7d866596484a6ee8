"""Who a user follows, from user-graph-view: they are never recommended to them, and whom
they follow in turn makes "people you may know"."""

from __future__ import annotations

import logging
from collections.abc import Collection

import grpc

from rhime.graphview import client as graphview

log = logging.getLogger("rhime.recommendation.follows")

MAX_FOLLOWEES = 20_000  # beyond this the list is cut (it only hides recommendations)
# friends of friends: bounded per user whatever the graph, so a computation stays cheap
MAX_VIA = 200  # people I follow whose followees are read
VIA_LIMIT = 1000  # followees read per such person


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


async def following_of(
    channel: grpc.aio.Channel | None, *, user_ids: Collection[str]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Whom the first `MAX_VIA` of `user_ids` (ascending, so repeated runs agree) follow, at
    most `VIA_LIMIT` each, and how many each follows (a lower bound when cut). Empty, with a
    warning, when the graph view cannot answer: recommendations then rest on taste alone."""
    if channel is None or not user_ids:
        return {}, {}
    following: dict[str, list[str]] = {}
    degree: dict[str, int] = {}
    try:
        async for user_id, ids, truncated in graphview.followees_of(
            channel=channel, user_ids=sorted(user_ids)[:MAX_VIA], limit=VIA_LIMIT, timeout=10.0
        ):
            following[user_id] = ids
            # a cut list means "at least this many and more": count it one more
            degree[user_id] = len(ids) + (1 if truncated else 0)
    except grpc.aio.AioRpcError as exc:
        log.warning("user-graph-view did not answer followees of %s: %s", len(user_ids), exc.code())
        return {}, {}
    return following, degree
