"""user-graph over HTTP, called directly with the identity a gateway forwards."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import nats
import pytest
from bson import ObjectId

from rhime import events
from rhime.graph import app as graph_app
from rhime.graph import blocks, edges
from rhime.kit import identity, outbox
from tests.support import SECRET, auth_headers, published


def oid() -> str:
    return str(ObjectId())


class Graph:
    def __init__(self, served: Any, client: httpx.AsyncClient) -> None:
        self.served = served
        self.kit = served.app.state.kit
        self.client = client

    async def users(self, n: int) -> list[str]:
        ids = sorted(oid() for _ in range(n))
        for uid in ids:
            await edges.add_user(self.kit.database, user_id=uid, user_name="u" + uid[-6:])
        return ids

    async def follow(self, a: str, b: str) -> httpx.Response:
        return await self.client.put(f"/api/graph/following/{b}", headers=auth_headers(a))

    async def unfollow(self, a: str, b: str) -> httpx.Response:
        return await self.client.delete(f"/api/graph/following/{b}", headers=auth_headers(a))

    async def block(self, a: str, b: str) -> httpx.Response:
        return await self.client.put(f"/api/graph/blocks/{b}", headers=auth_headers(a))

    async def unblock(self, a: str, b: str) -> httpx.Response:
        return await self.client.delete(f"/api/graph/blocks/{b}", headers=auth_headers(a))

    async def counts(self, uid: str) -> dict[str, int]:
        r = await self.client.get(f"/api/graph/users/{uid}/counts", headers=auth_headers(uid))
        assert r.status_code == 200, r.text
        result: dict[str, int] = r.json()
        return result


@pytest.fixture
async def graph(make_settings: Callable[..., Any], serve: Any) -> AsyncIterator[Graph]:
    settings = make_settings(graph_app.Settings, component="user-graph")
    served = await serve(graph_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        yield Graph(served, client)


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_follow_and_unfollow_are_idempotent(graph: Graph) -> None:
    a, b = await graph.users(2)
    for _ in range(2):
        r = await graph.follow(a, b)
        assert r.status_code == 200, r.text
        assert r.json() == {"following": True}
    assert await graph.counts(a) == {"followers": 0, "following": 1}
    assert await graph.counts(b) == {"followers": 1, "following": 0}
    r = await graph.client.get(f"/api/graph/relationship/{b}", headers=auth_headers(a))
    assert r.json() == {"following": True, "followedBy": False, "blocking": False}
    r = await graph.client.get(f"/api/graph/relationship/{a}", headers=auth_headers(b))
    assert r.json() == {"following": False, "followedBy": True, "blocking": False}
    for _ in range(2):
        r = await graph.unfollow(a, b)
        assert r.status_code == 200, r.text
        assert r.json() == {"following": False}
    assert await graph.counts(a) == {"followers": 0, "following": 0}
    assert await graph.counts(b) == {"followers": 0, "following": 0}
    # unfollowing someone never followed is a no-op too
    assert (await graph.unfollow(b, a)).json() == {"following": False}
    assert await graph.counts(a) == {"followers": 0, "following": 0}


async def test_each_state_change_publishes_one_event(graph: Graph) -> None:
    a, b = await graph.users(2)
    namespace = graph.kit.settings.namespace
    nc = await nats.connect(graph.kit.settings.nats_url)
    seen: list[events.Event] = []
    try:
        sub = await nc.subscribe(f"{namespace}.user.>")
        for op in (graph.follow, graph.follow, graph.unfollow, graph.unfollow, graph.follow):
            assert (await op(a, b)).status_code == 200

        async def three() -> bool:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.1)
                except nats.errors.TimeoutError:
                    return len(seen) >= 3
                model = events.BY_SUBJECT[msg.subject.removeprefix(namespace + ".")]
                seen.append(model.model_validate_json(msg.data))

        await wait_for(three)
    finally:
        await nc.close()
    assert [e.id for e in seen] == [
        f"user.followed:{a}:{b}:1",
        f"user.unfollowed:{a}:{b}:2",
        f"user.followed:{a}:{b}:3",
    ]
    assert all(getattr(e, "follower_id", None) == a for e in seen)
    assert all(getattr(e, "followee_id", None) == b for e in seen)
    assert await graph.kit.database[edges.EDGES].count_documents(edges.outbox_pending()) == 0


async def test_cannot_follow_yourself_or_a_missing_user(graph: Graph) -> None:
    (a,) = await graph.users(1)
    r = await graph.follow(a, a)
    assert r.status_code == 403
    assert r.json() == {"errors": [{"msg": "You cannot follow yourself."}]}
    r = await graph.follow(a, oid())
    assert r.status_code == 404
    assert r.json() == {"errors": [{"msg": "The user does not exist."}]}
    r = await graph.client.get(f"/api/graph/relationship/{a}", headers=auth_headers(a))
    assert r.status_code == 403
    for path in ("counts", "followers", "following"):
        r = await graph.client.get(f"/api/graph/users/{oid()}/{path}", headers=auth_headers(a))
        assert r.status_code == 404, path
    assert await graph.counts(a) == {"followers": 0, "following": 0}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/graph/following/{id}"),
        ("DELETE", "/api/graph/following/{id}"),
        ("GET", "/api/graph/relationship/{id}"),
        ("GET", "/api/graph/users/{id}/counts"),
        ("GET", "/api/graph/users/{id}/followers"),
        ("GET", "/api/graph/users/{id}/following"),
        ("PUT", "/api/graph/blocks/{id}"),
        ("DELETE", "/api/graph/blocks/{id}"),
    ],
)
async def test_every_route_checks_identity_and_ids(graph: Graph, method: str, path: str) -> None:
    a, b = await graph.users(2)
    url = path.format(id=b)
    r = await graph.client.request(method, url)
    assert r.status_code == 401
    assert r.json() == {"errors": [{"msg": "The user is not authenticated."}]}
    forged = auth_headers(a, secret="someone-else-secret-0123456789-abcdefghij")
    assert (await graph.client.request(method, url, headers=forged)).status_code == 401
    expired = {
        identity.HEADER: identity.encode(identity.Identity(user_id=a), secret=SECRET, ttl=-5)
    }
    assert (await graph.client.request(method, url, headers=expired)).status_code == 401
    plain = {identity.HEADER: f'{{"userId": "{a}", "isAuth": true}}'}
    assert (await graph.client.request(method, url, headers=plain)).status_code == 401
    r = await graph.client.request(method, path.format(id="nope"), headers=auth_headers(a))
    assert r.status_code == 400
    assert r.json() == {"errors": [{"msg": "Invalid userId", "field": "userId"}]}
    r = await graph.client.request(method, url, headers=auth_headers(a))
    assert r.status_code == 200, r.text


async def test_lists_page_by_twenty(graph: Graph) -> None:
    star, *fans = await graph.users(48)
    await asyncio.gather(*(graph.follow(f, star) for f in fans))
    await asyncio.gather(*(graph.follow(star, f) for f in fans[:5]))
    seen: list[str] = []
    sizes = []
    after: str | None = None
    while True:
        params = {"after": after} if after else {}
        r = await graph.client.get(
            f"/api/graph/users/{star}/followers", params=params, headers=auth_headers(star)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        sizes.append(len(body["userIds"]))
        seen += body["userIds"]
        after = body["next"]
        if after is None:
            break
    assert sizes == [20, 20, 7]
    assert seen == fans
    r = await graph.client.get(f"/api/graph/users/{star}/following", headers=auth_headers(fans[0]))
    assert r.json() == {"userIds": fans[:5], "next": None}
    r = await graph.client.get(
        f"/api/graph/users/{star}/followers", params={"after": "x"}, headers=auth_headers(star)
    )
    assert r.status_code == 400
    assert r.json() == {"errors": [{"msg": "Invalid after", "field": "after"}]}


async def test_counts_stay_exact_under_a_follow_storm(graph: Graph) -> None:
    users = await graph.users(20)
    rng = random.Random(7)

    async def storm(me: str) -> None:
        others = [u for u in users if u != me]
        for _ in range(60):
            other = rng.choice(others)
            op = graph.follow if rng.random() < 0.6 else graph.unfollow
            r = await op(me, other)
            assert r.status_code == 200, r.text

    await asyncio.gather(*(storm(u) for u in users))
    active = [doc async for doc in graph.kit.database[edges.EDGES].find({"active": True})]
    assert active, "the storm left no edges; the test would prove nothing"
    for uid in users:
        expected = {
            "followers": sum(1 for e in active if e["followee"] == uid),
            "following": sum(1 for e in active if e["follower"] == uid),
        }
        assert await graph.counts(uid) == expected


async def test_user_created_makes_a_node_once(graph: Graph) -> None:
    uid = oid()
    event = events.UserCreated(id=f"user.created:{uid}", user_id=uid, user_name="ana")
    bus = graph.kit.require_bus()
    await bus.publish(event)
    await bus.js.publish(  # a second delivery of the same fact, past JetStream's de-duplication
        bus.subject(event.SUBJECT), event.model_dump_json().encode()
    )
    (fan,) = await graph.users(1)

    async def exists() -> bool:
        return await edges.exists(graph.kit.database, user_id=uid)

    await wait_for(exists)
    assert (await graph.follow(fan, uid)).status_code == 200
    await asyncio.sleep(0.3)  # let the duplicate arrive; it must not reset the counts
    assert await graph.counts(uid) == {"followers": 1, "following": 0}
    assert await graph.kit.database[edges.USERS].count_documents({"_id": uid}) == 1


async def test_a_crash_before_counting_is_repaired(graph: Graph) -> None:
    a, b = await graph.users(2)
    # the edge changed but the process died before settling the counts
    await edges.transition(graph.kit.database, follower=a, followee=b, active=True)
    assert await graph.counts(b) == {"followers": 0, "following": 0}
    assert await edges.settle_stale(graph.kit.database, older_than=0) == 1
    assert await edges.settle_stale(graph.kit.database, older_than=0) == 0
    assert await graph.counts(b) == {"followers": 1, "following": 0}
    assert await graph.counts(a) == {"followers": 0, "following": 1}


class Recording:
    """A database whose collections record the filter of every command sent through them."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.filters: list[tuple[str, str, list[str]]] = []

    def __getitem__(self, name: str) -> Any:
        recording = self

        class Collection:
            def __getattr__(self, op: str) -> Any:
                method = getattr(recording.db[name], op)

                def call(*args: Any, **kwargs: Any) -> Any:
                    if args and isinstance(args[0], dict) and op != "insert_one":
                        recording.filters.append((name, op, sorted(args[0])))
                    return method(*args, **kwargs)

                return call

        return Collection()


async def test_a_first_follow_sends_the_edges_only_id_lookups(graph: Graph) -> None:
    # the embedded store scans the collection for any edge filter but a lone `_id`, under
    # the write lock: at a million edges that is seconds per follow
    a, b = await graph.users(2)
    db = Recording(graph.kit.database)
    assert await edges.exists(db, user_id=b)
    await edges.transition(db, follower=a, followee=b, active=True)
    await edges.settle(db, key=edges.edge_id(a, b))
    on_edges = [f for f in db.filters if f[0] == edges.EDGES]
    assert on_edges
    assert all(keys == ["_id"] for _, _, keys in on_edges), on_edges
    reads = [keys for _, op, keys in db.filters if op == "find_one"]
    assert reads
    assert all(keys == ["_id"] for keys in reads), reads
    assert await graph.counts(b) == {"followers": 1, "following": 0}
    # an unfollow and a follow again are counted once each
    for active in (False, True):
        await edges.transition(graph.kit.database, follower=a, followee=b, active=active)
        await edges.settle(graph.kit.database, key=edges.edge_id(a, b))
    assert await graph.counts(b) == {"followers": 1, "following": 0}
    assert await edges.settle_stale(graph.kit.database, older_than=0) == 0


async def test_a_deleted_account_unfollows_both_ways_and_leaves_nothing(graph: Graph) -> None:
    """`user.deleted` (twice, and after a crash mid-way): every edge from or to the person is
    unfollowed with its event, the others' counts are corrected, and no edge, node or
    applied id names them."""
    gone, a, b = await graph.users(3)
    for follower, followee in ((gone, a), (a, gone), (b, gone), (b, a)):
        assert (await graph.follow(follower, followee)).status_code == 200
    await graph.unfollow(gone, a)
    await graph.follow(gone, a)  # version 3: more applied ids to forget
    db = graph.kit.database
    # a crash mid-way: one edge already unfollowed and settled, not yet removed
    await graph.unfollow(b, gone)
    deleted = events.UserDeleted(id=f"user.deleted:{gone}", user_id=gone)
    bus = graph.kit.require_bus()
    await bus.publish(deleted)
    await bus.publish(deleted.model_copy(update={"id": deleted.id + ":again"}))

    async def forgotten() -> bool:
        left = [
            doc["_id"]
            async for coll in _collections(db)
            async for doc in db[coll].find({})
            if gone in repr(doc)
        ]
        return not left

    await wait_for(forgotten, timeout=20)
    assert await graph.counts(a) == {"followers": 1, "following": 0}
    assert await graph.counts(b) == {"followers": 0, "following": 1}
    r = await graph.follow(a, gone)
    assert r.status_code == 404
    unfollowed = await published(graph.kit.settings, "user.unfollowed", expect=4)
    pairs = {(e["follower_id"], e["followee_id"]) for e in unfollowed}
    assert pairs == {(gone, a), (a, gone), (b, gone)}  # the feed and notifications follow


async def _collections(db: Any) -> AsyncIterator[str]:
    for name in await db.list_collection_names():
        yield name


async def test_a_block_ends_follows_both_ways_and_bars_new_ones(graph: Graph) -> None:
    a, b, c = await graph.users(3)
    for follower, followee in ((a, b), (b, a), (c, b)):
        assert (await graph.follow(follower, followee)).status_code == 200
    for _ in range(2):
        r = await graph.block(a, b)
        assert r.status_code == 200, r.text
        assert r.json() == {"blocking": True}
    assert await graph.counts(a) == {"followers": 0, "following": 0}
    assert await graph.counts(b) == {"followers": 1, "following": 0}  # c still follows b
    for follower, followee in ((a, b), (b, a)):
        r = await graph.follow(follower, followee)
        assert r.status_code == 403
        assert r.json() == {"errors": [{"msg": "You cannot follow this person."}]}
    r = await graph.client.get(f"/api/graph/relationship/{b}", headers=auth_headers(a))
    assert r.json() == {"following": False, "followedBy": False, "blocking": True}
    r = await graph.client.get(f"/api/graph/relationship/{a}", headers=auth_headers(b))
    assert r.json() == {"following": False, "followedBy": False, "blocking": False}
    # the one blocked cannot lift it; the one blocking can, and old follows stay ended
    assert (await graph.unblock(b, a)).json() == {"blocking": False}
    assert (await graph.follow(b, a)).status_code == 403
    for _ in range(2):
        assert (await graph.unblock(a, b)).json() == {"blocking": False}
    assert await graph.counts(a) == {"followers": 0, "following": 0}
    assert (await graph.follow(b, a)).status_code == 200
    assert await graph.counts(a) == {"followers": 1, "following": 0}


async def test_blocks_publish_versioned_events_and_list_mine(graph: Graph) -> None:
    a, *others = await graph.users(23)
    await graph.follow(others[0], a)
    for other in others:
        assert (await graph.block(a, other)).status_code == 200
    await graph.unblock(a, others[0])
    await graph.block(a, others[0])
    r = await graph.client.get("/api/graph/blocks", headers=auth_headers(a))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["userIds"] == others[:20]
    r = await graph.client.get(
        "/api/graph/blocks", params={"after": first["next"]}, headers=auth_headers(a)
    )
    assert r.json() == {"userIds": others[20:], "next": None}
    blocked = await published(graph.kit.settings, "user.blocked", expect=23)
    assert {(e["blocker_id"], e["blocked_id"], e["version"]) for e in blocked} == {
        *((a, o, 1) for o in others),
        (a, others[0], 3),
    }
    unblocked = await published(graph.kit.settings, "user.unblocked", expect=1)
    assert [(e["blocked_id"], e["version"]) for e in unblocked] == [(others[0], 2)]
    unfollowed = await published(graph.kit.settings, "user.unfollowed", expect=1)
    assert [(e["follower_id"], e["followee_id"]) for e in unfollowed] == [(others[0], a)]


async def test_block_refuses_yourself_and_missing_users(graph: Graph) -> None:
    (a,) = await graph.users(1)
    r = await graph.block(a, a)
    assert r.status_code == 403
    assert r.json() == {"errors": [{"msg": "You cannot block yourself."}]}
    r = await graph.block(a, oid())
    assert r.status_code == 404
    r = await graph.client.get("/api/graph/blocks", params={"after": "x"}, headers=auth_headers(a))
    assert r.status_code == 400


async def test_a_block_event_ends_follows_a_crash_left(graph: Graph) -> None:
    """The block is stored but the request died before ending the follows: consuming its
    `user.blocked` ends them; a late one after the block was lifted ends nothing."""
    a, b = await graph.users(2)
    await graph.follow(b, a)
    db = graph.kit.database
    await blocks.transition(db, blocker=a, blocked=b, active=True)
    await outbox.flush(graph.kit, collection=blocks.BLOCKS, doc_id=blocks.block_id(a, b))

    async def ended() -> bool:
        return await graph.counts(a) == {"followers": 0, "following": 0}

    await wait_for(ended)
    assert (await graph.unblock(a, b)).status_code == 200
    assert (await graph.follow(b, a)).status_code == 200
    late = events.UserBlocked(id="user.blocked:late", blocker_id=a, blocked_id=b, version=1)
    await graph.kit.require_bus().publish(late)
    await asyncio.sleep(1.0)
    assert await graph.counts(a) == {"followers": 1, "following": 0}


async def test_a_deleted_account_leaves_no_block(graph: Graph) -> None:
    gone, a, b = await graph.users(3)
    await graph.block(gone, a)
    await graph.block(b, gone)
    await graph.kit.require_bus().publish(
        events.UserDeleted(id=f"user.deleted:{gone}", user_id=gone)
    )
    db = graph.kit.database

    async def forgotten() -> bool:
        return await db[blocks.BLOCKS].count_documents({}) == 0

    await wait_for(forgotten)
