from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import bson
import httpx
import pytest

from rhime import events
from rhime.likes import (
    batch,
    count,
    counts,
    like,
    reconcile,
    resync,
    state,
    updater,
)
from tests.content.content_helpers import service_headers
from tests.support import auth_headers, eventually, published

POSTS = [str(bson.ObjectId()) for _ in range(3)]
DAY = 86_400


class Likes:
    """The four like components on one namespace, as in production."""

    def __init__(self, make_settings: Callable[..., Any], serve: Any) -> None:
        self.make_settings = make_settings
        self.serve = serve

    async def start(self, *, flush_seconds: float = 0.1) -> Likes:
        s = self.make_settings
        self.like = await self.serve(like.create(s(like.Settings, component="like")))
        self.updater = await self.serve(
            updater.create(s(updater.Settings, component="like-updater"))
        )
        self.batch_settings = s(
            batch.Settings,
            component="like-batch-updater",
            flush_seconds=flush_seconds,
            shutdown_grace_seconds=0,
        )
        self.batch = await self.serve(batch.create(self.batch_settings))
        self.count = await self.serve(count.create(s(count.Settings, component="like-count")))
        self.kit = self.like.app.state.kit
        self.http = httpx.AsyncClient()
        for post_id in POSTS:
            await self.kit.require_bus().publish(
                events.PostCreated(
                    id=f"post.created:{post_id}",
                    post_id=post_id,
                    user_id="author",
                    created_at=events.now(),
                )
            )

        async def known() -> None:
            for post_id in POSTS:
                r = await self.http.put(
                    f"{self.like.url}/api/likes/{post_id}", headers=auth_headers("probe")
                )
                assert r.status_code == 200, r.text
                await self.http.delete(
                    f"{self.like.url}/api/likes/{post_id}", headers=auth_headers("probe")
                )

        await eventually(known)
        return self

    async def counts(self, ids: list[str]) -> dict[str, int]:
        r = await self.http.get(
            f"{self.count.url}/api/like-counts",
            params={"ids": ",".join(ids)},
            headers=auth_headers("reader"),
        )
        assert r.status_code == 200, r.text
        found: dict[str, int] = r.json()["counts"]
        return found

    async def exactly(self, final: dict[str, int]) -> None:
        """Until counts and the persisted states both say `final` (the like-updater holds a
        batch a while longer than the counts)."""

        async def settled() -> None:
            assert await self.counts(POSTS) == final
            states = await self.persisted()
            liked = {p: sum(v for k, v in states.items() if k.startswith(f"{p}:")) for p in POSTS}
            assert liked == final

        await eventually(settled, timeout=90)

    async def persisted(self) -> dict[str, bool]:
        coll = self.kit.database[state.COLLECTION]
        return {d["_id"]: d["liked"] async for d in coll.find({})}


@pytest.fixture
async def likes(make_settings: Callable[..., Any], serve: Any) -> Any:
    started = await Likes(make_settings, serve).start()
    yield started
    await started.http.aclose()


def toggled(item: str, user: str, *, liked: bool, seq: int, tag: str) -> events.LikeToggled:
    return events.LikeToggled(
        id=f"like.toggled:{tag}:{item}:{user}:{seq}",
        item_id=item,
        item_type="post",
        user_id=user,
        liked=liked,
        seq=seq,
    )


def storm(users: int, per_pair: int, seed: int) -> tuple[list[events.LikeToggled], dict[str, int]]:
    """Random like/unlike actions; each delivered twice, all shuffled. Returns the deliveries
    and the true final counts."""
    rnd = random.Random(seed)
    deliveries = []
    final: dict[str, int] = dict.fromkeys(POSTS, 0)
    for u in range(users):
        for post_id in POSTS:
            liked = False
            for seq in range(1, per_pair + 1):
                liked = rnd.random() < 0.6
                e = events.LikeToggled(
                    id=f"like.toggled:{post_id}:{u}:{seq}",
                    item_id=post_id,
                    item_type="post",
                    user_id=f"user{u}",
                    liked=liked,
                    seq=seq,
                )
                deliveries += [e, e.model_copy(update={"id": e.id + ":again"})]
            final[post_id] += liked
    rnd.shuffle(deliveries)
    return deliveries, final


async def test_bad_inputs(likes: Likes) -> None:
    h = auth_headers("u1")
    async with httpx.AsyncClient(base_url=likes.like.url) as c:
        for method in ("PUT", "DELETE", "GET"):
            r = await c.request(method, "/api/likes/nope", headers=h)
            assert r.status_code == 400
            assert r.json()["errors"][0]["msg"] == "Invalid itemId"
            r = await c.request(method, f"/api/likes/{POSTS[0]}")
            assert r.status_code == 401
        r = await c.put(f"/api/likes/{bson.ObjectId()}", headers=h)
        assert r.status_code == 404
        for body in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": [POSTS[0]] * 101}):
            r = await c.post("/api/likes/liked", json=body, headers=h)
            assert r.status_code == 400, body
        r = await c.post(
            "/internal/likes/summary", json={"ids": [POSTS[0]], "userId": "u1"}, headers=h
        )
        assert r.status_code == 403
    async with httpx.AsyncClient(base_url=likes.count.url) as c:
        for query in ("", "?ids=", "?ids=abc", "?ids=" + ",".join([POSTS[0]] * 101)):
            r = await c.get(f"/api/like-counts{query}", headers=h)
            assert r.status_code == 400, query
        r = await c.get("/api/like-counts/xyz", headers=h)
        assert r.status_code == 400
        r = await c.get(f"/api/like-counts/{POSTS[0]}")
        assert r.status_code == 401
    assert all(k.endswith(":probe") for k in await likes.persisted())


async def test_like_is_idempotent_and_read_your_writes(likes: Likes) -> None:
    h = auth_headers("u1")
    async with httpx.AsyncClient(base_url=likes.like.url) as c:
        for _ in range(3):
            r = await c.put(f"/api/likes/{POSTS[0]}", headers=h)
            assert r.json() == {"isLiked": True}
            # read-your-writes: the very next read sees it
            assert (await c.get(f"/api/likes/{POSTS[0]}", headers=h)).json() == {"isLiked": True}
        r = await c.post("/api/likes/liked", json={"ids": POSTS[:2]}, headers=h)
        assert r.json() == {"liked": {POSTS[0]: True, POSTS[1]: False}}
        assert (await c.get(f"/api/likes/{POSTS[0]}", headers=auth_headers("u2"))).json() == {
            "isLiked": False
        }

        async def counted() -> None:
            assert await likes.counts(POSTS) == {POSTS[0]: 1, POSTS[1]: 0, POSTS[2]: 0}

        await eventually(counted)
        for _ in range(2):
            r = await c.delete(f"/api/likes/{POSTS[0]}", headers=h)
            assert r.json() == {"isLiked": False}
            assert (await c.get(f"/api/likes/{POSTS[0]}", headers=h)).json() == {"isLiked": False}

        async def uncounted() -> None:
            assert await likes.counts(POSTS[:1]) == {POSTS[0]: 0}
            assert (await likes.persisted()).get(f"{POSTS[0]}:u1") is False

        await eventually(uncounted)
        r = await c.post(
            "/internal/likes/summary",
            json={"ids": POSTS[:1], "userId": "u1"},
            headers=service_headers("feed"),
        )
        assert r.json() == {"items": {POSTS[0]: {"count": 0, "liked": False}}}
    toggles = await published(likes.like.app.state.kit.settings, "like.toggled", expect=11)
    mine = [e for e in toggles if e["user_id"] == "u1"]
    # repeats are published too (and change nothing downstream), each after the one before
    assert [e["liked"] for e in mine] == [True, True, True, False, False]
    assert [e["seq"] for e in mine] == sorted({e["seq"] for e in mine})
    assert len({e["id"] for e in toggles}) == len(toggles)


async def test_an_action_whose_ack_was_lost_does_not_swallow_the_next(
    likes: Likes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JetStream keeps an unlike but its ack never arrives (the person is told 503); the like
    that follows is answered 200 and must be what is stored, not the unlike."""
    h = auth_headers("u3")
    bus = likes.kit.require_bus()
    send = bus.publish

    async def ack_lost(event: events.Event, **kwargs: Any) -> bool:
        await send(event, **kwargs)
        raise TimeoutError("nats: timeout")

    async with httpx.AsyncClient(base_url=likes.like.url) as c:
        assert (await c.put(f"/api/likes/{POSTS[1]}", headers=h)).json() == {"isLiked": True}
        monkeypatch.setattr(bus, "publish", ack_lost)
        assert (await c.delete(f"/api/likes/{POSTS[1]}", headers=h)).status_code == 503
        monkeypatch.setattr(bus, "publish", send)
        assert (await c.put(f"/api/likes/{POSTS[1]}", headers=h)).json() == {"isLiked": True}

    async def stored() -> None:
        assert (await likes.persisted()).get(f"{POSTS[1]}:u3") is True
        assert await likes.counts(POSTS[1:2]) == {POSTS[1]: 1}

    await eventually(stored)
    # and it stays so once every event is in (the lost-ack unlike is older than the like)
    await asyncio.sleep(1.5)
    await stored()


async def test_storm_with_duplicates_and_reordering_is_exact(likes: Likes) -> None:
    deliveries, final = storm(users=40, per_pair=6, seed=7)
    await likes.kit.require_bus().publish_many(deliveries)
    # and real people clicking at the same time, each many times
    async with httpx.AsyncClient(base_url=likes.like.url) as c:

        async def click(user: str) -> None:
            for n in range(6):
                path = f"/api/likes/{POSTS[n % 3]}"
                r = await (
                    c.put(path, headers=auth_headers(user))
                    if n < 4
                    else c.delete(path, headers=auth_headers(user))
                )
                assert r.status_code == 200

        await asyncio.gather(*(click(f"person{n}") for n in range(20)))
    # each person: like P0, P1, P2, P0 again, unlike P1, P2 → net one like on P0
    final[POSTS[0]] += 20

    await likes.exactly(final)


async def test_batch_updater_killed_mid_stream_counts_stay_exact(likes: Likes) -> None:
    deliveries, final = storm(users=60, per_pair=5, seed=11)
    await likes.batch.stop()  # not consuming while the stream fills
    publisher = asyncio.create_task(likes.kit.require_bus().publish_many(deliveries))
    for _ in range(3):
        served = await likes.serve(batch.create(likes.batch_settings))
        await asyncio.sleep(0.3)
        await served.stop()  # no grace: mid-batch, mid-flush, whatever it was doing
    await publisher
    await likes.serve(batch.create(likes.batch_settings))

    async def exact() -> None:
        assert await likes.counts(POSTS) == final

    await eventually(exact, timeout=90)


async def test_flush_crash_windows_never_double_count(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = make_settings(batch.Settings, component="like-batch-updater", flush_seconds=3600)
    kit = (await serve(batch.create(settings))).app.state.kit
    assert await batch.rebuild_if_lost(kit, state_ttl=DAY)  # a new deployment's
    deliveries, final = storm(users=30, per_pair=4, seed=3)
    half = len(deliveries) // 2
    await batch.record(kit, deliveries[:half], state_ttl=DAY)
    await batch.flush(kit, crash_before_done=True)  # Mongo written, snapshot not cleared
    await batch.record(kit, deliveries[half:], state_ttl=DAY)
    await batch.record(kit, deliveries[: half // 2], state_ttl=DAY)  # a redelivered part
    await batch.flush(kit, crash_before_done=True)  # re-applies the old snapshot: no-op
    await batch.flush(kit)
    await batch.flush(kit)
    found = await counts.get_many(kit, item_ids=POSTS)
    assert found == final
    assert await kit.redis.scard(batch.dirty_key(kit)) == 0


async def test_counts_are_coalesced_into_few_writes(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = make_settings(batch.Settings, component="like-batch-updater", flush_seconds=3600)
    kit = (await serve(batch.create(settings))).app.state.kit
    assert await batch.rebuild_if_lost(kit, state_ttl=DAY)  # a new deployment's
    deliveries, final = storm(users=50, per_pair=8, seed=5)
    for start in range(0, len(deliveries), 500):
        await batch.record(kit, deliveries[start : start + 500], state_ttl=DAY)
    await batch.flush(kit)
    assert await counts.get_many(kit, item_ids=POSTS) == final
    # one per item, and the flush's generation
    assert counts.mongo_writes(kit)._value.get() <= len(POSTS) + 1


async def test_reconcile_repairs_drift(likes: Likes) -> None:
    deliveries, final = storm(users=10, per_pair=3, seed=1)
    await likes.kit.require_bus().publish_many(deliveries)

    await likes.exactly(final)
    db = likes.kit.database
    await db[counts.COLLECTION].update_one({"_id": POSTS[0]}, {"$inc": {"count": 5}})
    await db[counts.COLLECTION].delete_one({"_id": POSTS[1]})
    stray = str(bson.ObjectId())
    await db[counts.COLLECTION].insert_one({"_id": stray, "count": 3})
    settings = likes.make_settings(reconcile.Settings, quiet_minutes=0)
    assert await reconcile.run(settings) == 0
    assert await likes.counts([*POSTS, stray]) == {**final, stray: 0}
    fixed = await reconcile.reconcile(db, quiet=reconcile.datetime.timedelta(0))
    assert fixed == {}


async def test_a_redis_loss_neither_double_counts_nor_loses_a_like(likes: Likes) -> None:
    """Redis comes back empty and JetStream hands the last events over again (their acks were
    lost too): counting waits for the like-updater, rebuilds from its state, and goes on."""
    deliveries, final = storm(users=12, per_pair=3, seed=2)
    bus = likes.kit.require_bus()
    await bus.publish_many(deliveries)
    await likes.exactly(final)
    kit = likes.batch.app.state.kit
    # the like-updater falls behind: the batch updater counts events it has not persisted
    await likes.updater.stop()
    await bus.publish_many(
        [toggled(POSTS[0], f"late{u}", liked=True, seq=1, tag="late") for u in range(4)]
    )
    final[POSTS[0]] += 4

    async def counted() -> None:
        assert await likes.counts(POSTS) == final

    await eventually(counted)
    await kit.redis.delete(*[k async for k in kit.redis.scan_iter(match=kit.key("*"))])
    await bus.publish_many([e.model_copy(update={"id": e.id + ":redelivered"}) for e in deliveries])
    await asyncio.sleep(2)
    # rebuilding now would forget the newer likes: it waits, counting nothing
    assert not await kit.redis.exists(resync.marker_key(kit))
    assert await likes.counts(POSTS) == final
    likes.updater = await likes.serve(
        updater.create(likes.make_settings(updater.Settings, component="like-updater"))
    )
    await likes.exactly(final)

    async def marked() -> None:
        assert await kit.redis.exists(resync.marker_key(kit))

    await eventually(marked)
    # and counting goes on from the rebuilt state: one more unlike (twice) is one less
    unlike = toggled(POSTS[0], "late0", liked=False, seq=2, tag="late")
    await bus.publish_many([unlike, unlike.model_copy(update={"id": unlike.id + ":again"})])
    final[POSTS[0]] -= 1
    await likes.exactly(final)


async def test_redis_back_a_moment_behind_is_noticed_and_rebuilt(likes: Likes) -> None:
    """Redis restarts from a log or snapshot that misses its last writes: counting state
    behind what MongoDB counted and JetStream holds as acked. Counting on top of it would be
    wrong for every pair it forgot."""
    first, final = storm(users=10, per_pair=2, seed=4)
    bus = likes.kit.require_bus()
    await bus.publish_many(first)
    await likes.exactly(final)
    kit = likes.batch.app.state.kit
    keys = [k async for k in kit.redis.scan_iter(match=kit.key("likes", "*"))]
    before = {k: await kit.redis.dump(k) for k in keys}
    # everyone likes every post, counted and flushed...
    await bus.publish_many(
        [toggled(p, f"user{u}", liked=True, seq=1000, tag="all") for p in POSTS for u in range(10)]
    )
    final = dict.fromkeys(POSTS, 10)
    await likes.exactly(final)
    # ...then Redis comes back without it
    await kit.redis.delete(*[k async for k in kit.redis.scan_iter(match=kit.key("likes", "*"))])
    for k, dumped in before.items():
        await kit.redis.restore(k, 0, dumped, replace=True)
    # and everyone unlikes the first post: ten transitions from liked
    await bus.publish_many(
        [toggled(POSTS[0], f"user{u}", liked=False, seq=2000, tag="none") for u in range(10)]
    )
    final[POSTS[0]] = 0
    await likes.exactly(final)


async def test_like_state_left_in_redis_expires(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = make_settings(batch.Settings, component="like-batch-updater", flush_seconds=3600)
    kit = (await serve(batch.create(settings))).app.state.kit
    assert await batch.rebuild_if_lost(kit, state_ttl=DAY)  # a new deployment's
    deliveries, final = storm(users=5, per_pair=2, seed=7)
    await batch.record(kit, deliveries, state_ttl=DAY)
    await batch.flush(kit)
    assert await counts.get_many(kit, item_ids=POSTS) == final
    # what stays after a flush is the per-item state, none of it for ever (and three
    # constant-size progress keys)
    progress = {resync.marker_key(kit), resync.flushes_key(kit), resync.recorded_key(kit)}
    left = [k async for k in kit.redis.scan_iter(match=kit.key("likes", "*")) if k not in progress]
    assert sorted(left) == sorted(kit.key("likes", "{" + p + "}", "state") for p in POSTS)
    for key in left:
        assert 0 < await kit.redis.ttl(key) <= DAY, key


async def _naming(likes: Likes, user_id: str) -> list[str]:
    """Like documents and Redis keys or values of this namespace that name `user_id`."""
    found = [
        f"mongo {d['_id']}"
        async for d in likes.kit.database[state.COLLECTION].find({"user_id": user_id})
    ]
    redis = likes.kit.redis
    async for key in redis.scan_iter(match=f"{likes.kit.settings.namespace}:*"):
        kind = await redis.type(key)
        value: Any = None
        if kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "string":
            value = await redis.get(key)
        if user_id in f"{key} {value}":
            found.append(f"redis {key}")
    return found


async def test_a_deleted_account_takes_its_likes_and_counts_with_it(likes: Likes) -> None:
    """`user.deleted`: every like of the person is undone with a forget unlike (counted once
    even when the deletion is redelivered), then nothing of the like context names them."""
    gone, stays = auth_headers("gone1"), auth_headers("stays1")
    async with httpx.AsyncClient(base_url=likes.like.url) as c:
        for post_id in POSTS[:2]:
            assert (await c.put(f"/api/likes/{post_id}", headers=gone)).status_code == 200
            assert (await c.put(f"/api/likes/{post_id}", headers=stays)).status_code == 200
        await c.put(f"/api/likes/{POSTS[2]}", headers=gone)
        await c.delete(f"/api/likes/{POSTS[2]}", headers=gone)  # unliked: state kept, too

        async def counted() -> None:
            assert await likes.counts(POSTS) == {POSTS[0]: 2, POSTS[1]: 2, POSTS[2]: 0}
            assert len([k for k in await likes.persisted() if k.endswith(":gone1")]) == 3

        await eventually(counted)
        deleted = events.UserDeleted(id="user.deleted:gone1", user_id="gone1")
        for _ in range(2):  # redelivered
            await likes.kit.require_bus().publish(deleted.model_copy(update={"id": f"{_}"}))

        async def forgotten() -> None:
            assert await likes.counts(POSTS) == {POSTS[0]: 1, POSTS[1]: 1, POSTS[2]: 0}
            assert await _naming(likes, "gone1") == []

        await eventually(forgotten)
        await asyncio.sleep(0.5)  # later flushes must not move the counts
        assert await likes.counts(POSTS) == {POSTS[0]: 1, POSTS[1]: 1, POSTS[2]: 0}
        r = await c.get(f"/api/likes/{POSTS[0]}", headers=stays)
        assert r.json() == {"isLiked": True}
