"""A block through the content services (real graph, post, comment, like and feed services
on one NATS): the one blocked leaves the other's home timeline and profile, cannot comment
on or like their posts, and neither can the one blocking; lifting it restores the profile
and the right to comment, not the follow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime.recommendation import app as recommendation_app
from rhime.recommendation import store
from rhime.recommendation.settings import Settings as RecommendationSettings
from tests.content.test_feed_timelines import Platform
from tests.support import auth_headers, eventually


@pytest.fixture
async def started(
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    spotify_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Platform]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    platform = await Platform(make_settings, serve, s3_url, spotify_url).start()
    yield platform
    await platform.stop()


async def _block(p: Platform, blocker: str, blocked: str, *, on: bool = True) -> None:
    r = await p.http.request(
        "PUT" if on else "DELETE",
        f"{p.graph.url}/api/graph/blocks/{blocked}",
        headers=auth_headers(blocker),
    )
    assert r.status_code == 200, r.text


async def _comment(p: Platform, user: str, post_id: str) -> httpx.Response:
    return await p.http.post(
        f"{p.comment.url}/api/comments/posts/{post_id}",
        json={"text": "hi"},
        headers=auth_headers(user),
    )


async def _like(p: Platform, user: str, item_id: str, *, on: bool = True) -> httpx.Response:
    return await p.http.request(
        "PUT" if on else "DELETE",
        f"{p.like.url}/api/likes/{item_id}",
        headers=auth_headers(user),
    )


async def _profile(p: Platform, viewer: str, author: str) -> list[str]:
    r = await p.http.get(f"{p.feed.url}/api/feed/users/{author}", headers=auth_headers(viewer))
    assert r.status_code == 200, r.text
    return [x["postId"] for x in r.json()["posts"]]


async def test_a_block_keeps_two_people_apart_in_content(started: Platform) -> None:
    p = started
    ana, bo, cy = await p.person("ana"), await p.person("bo"), await p.person("cy")
    await p.follow(bo, ana)
    await p.follow(ana, bo)
    ana_post = await p.share(ana, "mine")
    bo_post = await p.share(bo, "his")

    async def seen() -> None:
        assert ana_post in [x["postId"] for x in (await p.home(bo))["posts"]]
        assert await _profile(p, bo, ana) == [ana_post]

    await eventually(seen)
    r = await _comment(p, bo, ana_post)
    assert r.status_code == 201, r.text
    bo_comment = r.json()["comment"]["commentId"]
    assert (await _like(p, bo, ana_post)).status_code == 200
    await _block(p, ana, bo)

    async def apart() -> None:
        assert [x["postId"] for x in (await p.home(bo))["posts"]] == [bo_post]
        assert [x["postId"] for x in (await p.home(ana))["posts"]] == [ana_post]
        assert await _profile(p, bo, ana) == []
        assert await _profile(p, ana, bo) == []
        r = await _comment(p, bo, ana_post)
        assert r.status_code == 403, r.text
        assert r.json() == {"errors": [{"msg": "You cannot comment on this person's posts."}]}
        # both ways: the one blocking cannot reach the other either
        assert (await _comment(p, ana, bo_post)).status_code == 403
        r = await _like(p, bo, ana_post)
        assert r.status_code == 403, r.text
        assert r.json() == {"errors": [{"msg": "You cannot like this person's posts."}]}
        assert (await _like(p, ana, bo_comment)).status_code == 403

    await eventually(apart)
    # a like given before may still be taken back; others are not touched
    assert (await _like(p, bo, ana_post, on=False)).json() == {"isLiked": False}
    assert await _profile(p, cy, ana) == [ana_post]
    assert (await _comment(p, cy, ana_post)).status_code == 201
    # a post shared while blocked does not reach the other (the follow is gone)
    later = await p.share(ana, "later")

    async def not_fanned_out() -> None:
        assert await _profile(p, cy, ana) == [later, ana_post]
        assert later not in [x["postId"] for x in (await p.home(bo))["posts"]]

    await eventually(not_fanned_out)
    await _block(p, ana, bo, on=False)

    async def lifted() -> None:
        assert await _profile(p, bo, ana) == [later, ana_post]
        assert (await _comment(p, bo, ana_post)).status_code == 201

    await eventually(lifted)
    assert [x["postId"] for x in (await p.home(bo))["posts"]] == [bo_post]  # no follow back


async def test_recommendations_never_pair_two_people_apart(
    started: Platform, make_settings: Callable[..., Any], serve: Any
) -> None:
    """A block removes the pair's computed recommendations both ways and hides each from the
    other's list at once; lifting it lets the next computation pair them again."""
    p = started
    settings = make_settings(RecommendationSettings, component="recommendation")
    served = await serve(recommendation_app.create(settings))
    db = served.app.state.kit.database
    ana, bo, cy = await p.person("ana"), await p.person("bo"), await p.person("cy")
    for user in (ana, bo, cy):
        await db[store.TOKENS].insert_one({"_id": user, "connected": True})
    for x, y in ((ana, bo), (bo, ana), (ana, cy)):
        await db[store.RECOMMENDATIONS].insert_one(
            {
                "_id": store.recommendation_id(x, y),
                "userId": x,
                "otherId": y,
                "similarity": 0.5,
                "dismissed": False,
            }
        )

    async def listed(viewer: str) -> list[str]:
        async with httpx.AsyncClient(base_url=served.url) as client:
            r = await client.get("/api/recommendations", headers=auth_headers(viewer))
        assert r.status_code == 200, r.text
        return [x["userId"] for x in r.json()["recommendations"]]

    assert await listed(ana) == sorted([bo, cy])
    await _block(p, bo, ana)

    async def apart() -> None:
        assert await listed(ana) == [cy]
        assert await listed(bo) == []
        left = db[store.RECOMMENDATIONS].find({"userId": {"$in": [ana, bo]}})
        assert [d["_id"] async for d in left] == [store.recommendation_id(ana, cy)]

    await eventually(apart)
