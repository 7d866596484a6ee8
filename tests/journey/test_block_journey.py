"""Blocking a person through the gateway, on the platform as `make run` starts it: the two
stop following each other, cannot follow again, do not see, comment on or like each other's
posts, do not find each other in people search and are not recommended to each other; a
third person is not affected, and lifting the block lets them follow again without bringing
back the old follows."""

from __future__ import annotations

from typing import Any

import pytest

from rhime.apiclient import ApiError, Session
from rhime.runtime import local
from tests.journey.test_journey import eventually, newcomer


async def _fails(call: Any, status: int) -> None:
    with pytest.raises(ApiError) as caught:
        await call
    assert caught.value.status == status, caught.value


async def _home(session: Session) -> list[str]:
    body = await session.request("GET", "/api/feed")
    return [p["postId"] for p in body["posts"]]


async def _profile(session: Session, user_id: str) -> list[str]:
    body = await session.request("GET", f"/api/feed/users/{user_id}")
    return [p["postId"] for p in body["posts"]]


async def _finds(session: Session, q: str) -> list[str]:
    body = await session.request("GET", "/api/users/search", params={"q": q})
    return [u["userId"] for u in body["users"]]


async def _recommended(session: Session) -> list[str]:
    """Every page of the session's recommendations (other tests' people share the platform)."""
    found: list[str] = []
    params: dict[str, str] = {}
    for _ in range(50):
        body = await session.request("GET", "/api/recommendations", params=params)
        found += [r["userId"] for r in body["recommendations"]]
        if not body["next"]:
            break
        params = {"cursor": body["next"]}
    return found


@pytest.mark.slow
async def test_two_people_apart(platform: local.Platform) -> None:
    ana, bo, cy = [await newcomer(platform, n) for n in ("blockjana", "blockjbo", "blockjcy")]
    try:
        # taste from the same fake Spotify: they are recommended to each other first (and
        # would be again once the block ends their follows, but for the block)
        await eventually(lambda: _recommended(bo), lambda ids: ana.user_id in ids)
        [track] = await ana.search_tracks("a", limit=1)
        await bo.follow(ana.user_id)
        await ana.follow(bo.user_id)
        post_id = await ana.post(track=track, caption="mine")
        await eventually(lambda: _home(bo), lambda ids: post_id in ids)

        await ana.block(bo.user_id)
        await ana.block(bo.user_id)  # idempotent
        body = await ana.request("GET", "/api/graph/blocks")
        assert body == {"userIds": [bo.user_id], "next": None}
        for who, other in ((ana, bo), (bo, ana)):
            counts = await who.request("GET", f"/api/graph/users/{who.user_id}/counts")
            assert counts == {"followers": 0, "following": 0}
            await _fails(who.follow(other.user_id), 403)
        await eventually(lambda: _home(bo), lambda ids: post_id not in ids)
        await eventually(lambda: _profile(bo, ana.user_id), lambda ids: ids == [])
        await eventually(lambda: _finds(bo, "blockjana"), lambda ids: ids == [])
        await eventually(lambda: _finds(ana, "blockjbo"), lambda ids: ids == [])
        await eventually(lambda: _recommended(bo), lambda ids: ana.user_id not in ids)
        assert bo.user_id not in await _recommended(ana)
        await _fails(bo.comment(post_id, "hello?"), 403)
        await _fails(bo.like(post_id), 403)
        # the third person sees, finds and reaches both
        assert await _finds(cy, "blockj") == [ana.user_id, bo.user_id, cy.user_id]
        assert await _profile(cy, ana.user_id) == [post_id]
        await cy.comment(post_id, "nice")

        await ana.unblock(bo.user_id)
        assert await ana.request("GET", "/api/graph/blocks") == {"userIds": [], "next": None}
        await eventually(lambda: _finds(bo, "blockjana"), lambda ids: ids == [ana.user_id])
        counts = await ana.request("GET", f"/api/graph/users/{ana.user_id}/counts")
        assert counts == {"followers": 0, "following": 0}  # old follows do not come back
        await bo.follow(ana.user_id)
        await eventually(lambda: _profile(bo, ana.user_id), lambda ids: ids == [post_id])
        await bo.comment(post_id, "hello again")
    finally:
        for s in (ana, bo, cy):
            await s.close()
