from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import bson
import httpx
import pytest

from rhime import catalogue, events
from rhime.comment import app as comment_app
from rhime.feed import app as feed_app
from rhime.feed import pages, timelines
from rhime.graph import app as graph_app
from rhime.graphview import server as graphview_server
from rhime.kit import app as kit_app
from rhime.kit import metrics, stores
from rhime.likes import batch, like, updater
from rhime.post import app as post_app
from rhime.spotify import app as spotify_app
from rhime.user import app as user_app
from tests.content.content_helpers import (
    TRACK,
    Hosted,
    connect_spotify,
    loopback_host,
    spotify_settings,
)
from tests.support import auth_headers, eventually, sample


def port_of(name: str) -> int:
    """The port the service URL template below gives a component: its catalogue port with a
    leading 2 (8109 → 28109), clear of a local run of the platform on the catalogue ports."""
    return int(f"2{catalogue.get(name).port}")


class Platform:
    """Every component a home page touches, on the catalogue's ports (the feed finds them
    through the service URL template), in this test's namespace."""

    def __init__(
        self, make_settings: Callable[..., Any], serve: Any, s3_url: str, spotify_url: str
    ) -> None:
        self.make_settings = make_settings
        self.serve = serve
        self.s3_url = s3_url
        self.spotify_url = spotify_url
        self.connected: set[str] = set()
        self.http = httpx.AsyncClient(timeout=20)
        self.names: dict[str, str] = {}
        self.host = loopback_host()
        self.hosted: list[Hosted] = []

    def settings(self, cls: type[Any], name: str, **extra: Any) -> Any:
        return self.make_settings(
            cls, component=name, service_url_template=f"http://{self.host}:2{{port}}", **extra
        )

    async def on_port(self, app: Any, name: str) -> Any:
        hosted = Hosted(app, host=self.host, port=port_of(name))
        self.hosted.append(hosted)
        return await hosted.start()

    async def start(self, **feed: Any) -> Platform:
        s = self.settings
        self.graph = await self.on_port(
            graph_app.create(s(graph_app.Settings, "user-graph")), "user-graph"
        )
        view_settings = s(
            graphview_server.Settings,
            "user-graph-view",
            host=self.host,
            port=port_of("user-graph-view"),
        )
        self.view = await graphview_server.start(view_settings)
        public = f"http://{self.host}:{port_of('spotify')}"
        spotify = spotify_settings(
            self.make_settings,
            fake_url=self.spotify_url,
            public_url=public,
            service_url_template=f"http://{self.host}:2{{port}}",
        )
        self.spotify = await self.on_port(spotify_app.create(spotify), "spotify")
        self.post = await self.on_port(post_app.create(s(post_app.Settings, "post")), "post")
        self.comment = await self.on_port(
            comment_app.create(s(comment_app.Settings, "comment")), "comment"
        )
        self.like = await self.on_port(like.create(s(like.Settings, "like")), "like")
        await self.serve(updater.create(s(updater.Settings, "like-updater")))
        await self.serve(batch.create(s(batch.Settings, "like-batch-updater", flush_seconds=0.05)))
        self.user = await self.on_port(
            user_app.create(
                s(
                    user_app.Settings,
                    "user",
                    s3_endpoint_url=self.s3_url,
                    s3_bucket="b" + self.make_settings().namespace,
                )
            ),
            "user",
        )
        self.feed = await self.serve(feed_app.create(s(feed_app.Settings, "feed", **feed)))
        self.kit = self.feed.app.state.kit
        return self

    async def stop(self) -> None:
        await self.view.stop(0)
        for hosted in reversed(self.hosted):
            await hosted.stop()
        await self.http.aclose()

    async def person(self, name: str) -> str:
        user_id = str(bson.ObjectId())
        self.names[user_id] = name
        await self.kit.require_bus().publish(
            events.UserCreated(
                id=f"user.created:{user_id}",
                user_id=user_id,
                user_name=name,
            )
        )
        return user_id

    async def follow(self, follower: str, followee: str, *, on: bool = True) -> None:
        async def done() -> None:
            r = await self.http.request(
                "PUT" if on else "DELETE",
                f"{self.graph.url}/api/graph/following/{followee}",
                headers=auth_headers(follower),
            )
            assert r.status_code == 200, r.text

        await eventually(done)

    async def share(self, author: str, caption: str) -> str:
        if author not in self.connected:
            # a poster has Spotify connected: post looks the track up with their token
            await connect_spotify(self.spotify.url, author, listener=len(self.connected))
            self.connected.add(author)
        r = await self.http.post(
            f"{self.post.url}/api/posts",
            json={"trackId": TRACK["id"], "caption": caption},
            headers=auth_headers(author),
        )
        assert r.status_code == 201, r.text
        post_id: str = r.json()["post"]["postId"]
        return post_id

    async def home(self, viewer: str, **params: Any) -> dict[str, Any]:
        r = await self.http.get(
            f"{self.feed.url}/api/feed", params=params, headers=auth_headers(viewer)
        )
        assert r.status_code == 200, r.text
        page: dict[str, Any] = r.json()
        return page

    async def all_pages(self, viewer: str, limit: int, path: str = "") -> list[str]:
        seen: list[str] = []
        before = None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"before": before} if before else {})}
            r = await self.http.get(
                f"{self.feed.url}/api/feed{path}", params=params, headers=auth_headers(viewer)
            )
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [p["postId"] for p in page["posts"]]
            before = page["next"]
            if before is None:
                return seen

    async def in_cache(self, viewer: str) -> list[str]:
        found: list[str] = await self.kit.redis.zrevrangebyscore(
            timelines.keys(self.kit, viewer)[0], "+inf", 0
        )
        return found


@pytest.fixture
async def platform(
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    spotify_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    started: list[Platform] = []

    async def start(**feed: Any) -> Platform:
        p = await Platform(make_settings, serve, s3_url, spotify_url).start(**feed)
        started.append(p)
        return p

    yield start
    for p in started:
        await p.stop()


async def test_fan_out_pages_hydration_and_deletion(platform: Callable[..., Any]) -> None:
    p: Platform = await platform()
    ana, bo, cy = await p.person("ana"), await p.person("bo"), await p.person("cy")
    await p.follow(bo, ana)
    await p.follow(bo, cy)
    assert (await p.home(bo))["posts"] == []  # builds bo's (empty) timeline
    made = []
    for n in range(4):
        made.append(await p.share(ana, f"ana {n}"))
        made.append(await p.share(cy, f"cy {n}"))
    mine = await p.share(bo, "my own")
    made.append(mine)
    expected = sorted(made, reverse=True)

    async def fanned_out() -> None:
        assert await p.in_cache(bo) == expected

    await eventually(fanned_out)
    assert await p.all_pages(bo, limit=3) == expected
    # a comment and a like show up on the hydrated page
    r = await p.http.post(
        f"{p.comment.url}/api/comments/posts/{made[0]}",
        json={"text": "nice"},
        headers=auth_headers(cy),
    )
    assert r.status_code == 201
    r = await p.http.put(f"{p.like.url}/api/likes/{made[0]}", headers=auth_headers(bo))
    assert r.json() == {"isLiked": True}

    async def hydrated() -> None:
        page = await p.home(bo, limit=50)
        first = next(x for x in page["posts"] if x["postId"] == made[0])
        assert first["caption"] == "ana 0"
        assert first["track"]["name"] == TRACK["name"]
        assert first["author"]["userId"] == ana
        assert first["author"]["userName"] == "ana"
        assert first["commentCount"] == 1
        assert first["likeCount"] == 1
        assert first["likedByMe"] is True
        assert set(first) == {
            "postId",
            "createdAt",
            "caption",
            "track",
            "author",
            "likeCount",
            "commentCount",
            "likedByMe",
        }

    await eventually(hydrated)
    # ana's own timeline is not built (she never read it); cy's neither: nothing for them
    assert await p.in_cache(ana) == []
    r = await p.http.delete(f"{p.post.url}/api/posts/{made[2]}", headers=auth_headers(ana))
    assert r.status_code == 204

    async def removed() -> None:
        assert made[2] not in await p.in_cache(bo)
        assert made[2] not in await p.all_pages(bo, limit=4)

    await eventually(removed)
    profile = await p.all_pages(bo, limit=2, path=f"/users/{ana}")
    assert profile == sorted([made[0], made[4], made[6]], reverse=True)


async def test_cold_and_evicted_timelines_rebuild_with_pages_past_the_cache(
    platform: Callable[..., Any],
) -> None:
    p: Platform = await platform(timeline_cap=10)
    ana, bo, cy = await p.person("ana"), await p.person("bo"), await p.person("cy")
    await p.follow(bo, ana)
    made = [await p.share(ana, f"a{n}") for n in range(9)]
    made += [await p.share(cy, f"c{n}") for n in range(4)]  # not followed
    made += [await p.share(bo, f"b{n}") for n in range(5)]
    expected = sorted(made[:9] + made[13:], reverse=True)

    async def indexed() -> None:
        assert await p.all_pages(bo, limit=4) == expected

    await eventually(indexed)  # cold: rebuilt from the index; 14 posts, a cache of 10
    assert await p.in_cache(bo) == expected[:10]
    await timelines.drop(p.kit, user_id=bo)  # evicted
    assert await p.all_pages(bo, limit=5) == expected
    assert await p.in_cache(bo) == expected[:10]


async def test_cache_hits_and_misses_are_counted_per_cache(
    platform: Callable[..., Any],
) -> None:
    """`rhime_cache_lookups_total` on the feed's own /metrics: a timeline, post or author card
    found in Redis is a hit, one fetched or rebuilt is a miss (counted per key)."""
    p: Platform = await platform()
    ana, bo = await p.person("ana"), await p.person("bo")
    await p.follow(bo, ana)
    made = [await p.share(ana, f"a{n}") for n in range(2)]

    async def indexed() -> None:
        assert await p.all_pages(bo, limit=5) == sorted(made, reverse=True)

    await eventually(indexed)

    async def lookups() -> dict[tuple[str, str], float]:
        scraped = (await p.http.get(f"{p.feed.url}/metrics")).text
        return {
            (cache, result): sample(
                scraped, "rhime_cache_lookups_total", cache=cache, result=result
            )
            or 0.0
            for cache in ("timeline", "post", "card")
            for result in ("hit", "miss")
        }

    await timelines.drop(p.kit, user_id=bo)  # evicted
    await p.kit.redis.delete(pages.post_key(p.kit, made[0]), pages.card_key(p.kit, ana))
    before = await lookups()
    await p.home(bo)  # rebuilt; one post and the card fetched again
    between = await lookups()
    await p.home(bo)  # all from Redis
    after = await lookups()

    def delta(a: dict[tuple[str, str], float], b: dict[tuple[str, str], float]) -> dict[str, int]:
        return {f"{c} {r}": int(b[c, r] - a[c, r]) for c, r in a if b[c, r] != a[c, r]}

    assert delta(before, between) == {
        "timeline miss": 1,
        "post hit": 1,
        "post miss": 1,
        "card miss": 1,
    }
    assert delta(between, after) == {"timeline hit": 1, "post hit": 2, "card hit": 1}


async def test_follow_adds_and_unfollow_removes(platform: Callable[..., Any]) -> None:
    p: Platform = await platform()
    ana, bo = await p.person("ana"), await p.person("bo")
    older = [await p.share(ana, f"a{n}") for n in range(3)]
    await p.follow(bo, await p.person("cy"))
    assert (await p.home(bo))["posts"] == []

    async def settled() -> None:
        r = await p.http.get(f"{p.feed.url}/api/feed/users/{ana}", headers=auth_headers(bo))
        assert len(r.json()["posts"]) == 3

    await eventually(settled)
    await p.follow(bo, ana)

    async def added() -> None:
        assert await p.in_cache(bo) == sorted(older, reverse=True)

    await eventually(added)
    await p.follow(bo, ana, on=False)

    async def gone() -> None:
        assert [x["postId"] for x in (await p.home(bo))["posts"]] == []

    await eventually(gone)


async def test_big_accounts_merge_at_read_time(platform: Callable[..., Any]) -> None:
    p: Platform = await platform(big_threshold=2)
    star = await p.person("star")
    fans = [await p.person(f"fan{n}") for n in range(3)]
    for fan in fans:
        await p.follow(fan, star)
        assert (await p.home(fan))["posts"] == []
    first = await p.share(star, "hello fans")

    async def merged() -> None:
        page = await p.home(fans[0])
        assert [x["postId"] for x in page["posts"]] == [first]

    await eventually(merged)
    second = await p.share(star, "again")

    async def both() -> None:
        for fan in fans:
            assert [x["postId"] for x in (await p.home(fan))["posts"]] == [second, first]

    await eventually(both)
    for fan in fans:
        assert second not in await p.in_cache(fan)  # never fanned out


async def test_bad_inputs(platform: Callable[..., Any]) -> None:
    p: Platform = await platform()
    h = auth_headers(str(bson.ObjectId()))
    base = p.feed.url + "/api/feed"
    for url in (
        f"{base}?before=123",
        f"{base}?before={'g' * 24}",
        f"{base}?limit=0",
        f"{base}?limit=51",
        f"{base}/users/nope",
        f"{base}/users/{bson.ObjectId()}?before=zz",
    ):
        r = await p.http.get(url, headers=h)
        assert r.status_code == 400, url
        assert "errors" in r.json()
    r = await p.http.get(base)
    assert r.status_code == 401


async def test_every_timeline_key_expires_unless_its_reader_comes_back(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings()
    kit = kit_app.Kit(
        settings=settings,
        metrics=metrics.create(),
        database_name=None,
        uses_redis=True,
        uses_nats=False,
        redis=stores.redis(settings),
    )
    ttl, post = 3600, str(bson.ObjectId())
    await timelines.start_build(kit, user_id="a", ttl=ttl)
    await timelines.build(kit, user_id="a", post_ids=[post], cap=10, ttl=ttl)
    await timelines.set_bigs(kit, user_id="a", authors=["big1"], ttl=ttl)
    await timelines.add(kit, user_id="b", post_ids=[post], cap=10, ttl=ttl)
    await timelines.follow_big(kit, user_id="c", author="big2", ttl=ttl)
    pipe = kit.redis.pipeline(transaction=False)
    timelines.add_big(pipe, kit, user_id="d", author="big3", ttl=ttl)
    await pipe.execute()
    timeline, _, bigs = timelines.keys(kit, "a")
    await kit.redis.expire(timeline, 5)
    await kit.redis.expire(bigs, 5)
    assert await timelines.touch(kit, user_id="a", inactive_seconds=ttl)  # a read renews
    found = [key async for key in kit.redis.scan_iter(match=kit.key("*"))]
    assert len(found) == 6  # a: timeline, active, bigs; b: timeline; c, d: bigs
    for key in found:
        assert 5 < await kit.redis.ttl(key) <= ttl, key
    await kit.redis.aclose()
