"""user-graph-view's FolloweesOf: whom several users follow in one call, cut at a limit."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from rhime.graph import edges
from rhime.graphview import client
from tests.music_services.music_helpers import oid


async def test_followees_of_several_users_in_request_order_cut_at_the_limit(
    graph_view: tuple[str, Any],
) -> None:
    url, db = graph_view
    a, b, lonely = oid(), oid(), oid()
    targets = sorted(oid() for _ in range(3))
    for t in targets:
        await edges.transition(db, follower=a, followee=t, active=True)
    await edges.transition(db, follower=b, followee=targets[0], active=True)
    async with grpc.aio.insecure_channel(url.split("://", 1)[-1]) as channel:
        got = [
            reply
            async for reply in client.followees_of(
                channel=channel, user_ids=[b, a, lonely], limit=2
            )
        ]
        assert got == [(b, [targets[0]], False), (a, targets[:2], True), (lonely, [], False)]

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            async for _ in client.followees_of(channel=channel, user_ids=[a, "nope"]):
                pass
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
