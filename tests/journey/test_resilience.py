"""Resilience of the platform running as processes (what `make run` starts): workers killed
while likes and posts flow, NATS restarted mid-run, a component started before what it
depends on. Everything is checked through the gateway, as people would see it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import nats.errors
import pytest
import redis.asyncio as aioredis

from rhime import catalogue, events
from rhime.apiclient import ApiError, Session
from rhime.kit import identity
from rhime.runtime import local, servers

T = TypeVar("T")
PASSWORD = "s3cret!pass"
WORKERS = ("like-batch-updater", "like-updater", "feed")


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, timeout: float = 60.0
) -> T:
    """Poll until `ok(value)`: events make most effects asynchronous."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"not reached in {timeout}s; last: {value!r}"
        await asyncio.sleep(0.25)


def tag() -> str:
    return uuid.uuid4().hex[:8]


def port_of(platform: local.Platform, name: str) -> int:
    return int(platform.process(name).env["RHIME_PORT"])


async def person(platform: local.Platform, name: str) -> Session:
    """A signed-in person with Spotify connected. The account is made at the auth component
    itself: the gateway allows 60 sign-up/sign-in requests a minute per address, fewer than
    these tests need. The cookie is for the host, so the session then uses the gateway."""
    session = Session(platform.gateway_url)
    auth = f"http://127.0.0.1:{port_of(platform, 'auth')}/api/auth"
    body = {"userName": name, "email": f"{name}@example.com", "password": PASSWORD}
    r = await session.http.post(f"{auth}/signup", json=body)
    assert r.status_code == 201, r.text
    r = await session.http.post(f"{auth}/signin", json={"userName": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    session.user_id, session.user_name = r.json()["userId"], name
    await session.connect_spotify()
    return session


@contextlib.asynccontextmanager
async def people(platform: local.Platform, names: Sequence[str]) -> AsyncIterator[list[Session]]:
    sessions = list(await asyncio.gather(*(person(platform, n) for n in names)))
    try:
        yield sessions
    finally:
        for session in sessions:
            await session.close()


async def retrying(call: Callable[[], Awaitable[T]], *, timeout: float = 30.0) -> T:
    """Repeat a call while the answer is "not yet": 404 (the like component has not seen the
    post's event yet, or user-graph the new user's) or 502/503 (a dependency is reconnecting).
    Only used for calls that are safe to repeat (like, unlike and follow set a state)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except ApiError as exc:
            if exc.status not in (404, 502, 503) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def set_liked(session: Session, item_id: str, liked: bool) -> bool:
    act = session.like if liked else session.unlike
    return await retrying(lambda: act(item_id))


async def like_counts(session: Session, item_ids: Sequence[str]) -> dict[str, int]:
    out = await session.request("GET", "/api/like-counts", params={"ids": ",".join(item_ids)})
    return {k: int(v) for k, v in out["counts"].items()}


async def liked_by(session: Session, item_ids: Sequence[str]) -> dict[str, bool]:
    async def one(item_id: str) -> bool:
        return bool((await session.request("GET", f"/api/likes/{item_id}"))["isLiked"])

    return dict(zip(item_ids, await asyncio.gather(*map(one, item_ids)), strict=True))


async def timeline(session: Session) -> set[str]:
    out = await session.request("GET", "/api/feed", params={"limit": 50})
    return {p["postId"] for p in out["posts"]}


async def all_in_timelines(followers: Sequence[Session], post_ids: set[str]) -> None:
    async def one(follower: Session) -> None:
        await eventually(lambda: timeline(follower), lambda seen: post_ids <= seen)

    await asyncio.gather(*(one(f) for f in followers))


async def drop_overlays(platform: local.Platform, sessions: Sequence[Session]) -> None:
    """Remove each person's recent-actions overlay, as its TTL would: reads then come from
    the state the like-updater persisted."""
    namespace = platform.process("like").env["RHIME_NAMESPACE"]
    client = aioredis.from_url(platform.runtime.urls["redis"])
    try:
        await client.delete(*(f"{namespace}:likes:mine:{s.user_id}" for s in sessions))
    finally:
        await client.aclose()


async def drained(platform: local.Platform, consumers: Sequence[tuple[str, str]]) -> None:
    """Wait until these (component, subject) consumers have nothing left: no event waiting
    and none delivered but unacknowledged. An event a killed process had taken is delivered
    again only after the consumer's ack wait (feed's post.created: 120 s), so this waits long."""
    namespace = platform.process("like").env["RHIME_NAMESPACE"]
    nc = await nats.connect(platform.runtime.urls["nats"])
    try:
        js = nc.jetstream()

        async def left() -> dict[str, tuple[int, int]]:
            out = {}
            for component, subject in consumers:
                durable = f"{component}-{subject.replace('.', '-')}"
                stream = events.stream_name(namespace, events.noun(subject))
                info = await js.consumer_info(stream, durable)
                out[durable] = (info.num_pending or 0, info.num_ack_pending or 0)
            return out

        await eventually(left, lambda n: not any(map(any, n.values())), timeout=150)
    finally:
        await nc.close()


async def dead_letters(platform: local.Platform, durable: str) -> list[dict[str, Any]]:
    """The dead letters of one consumer, read without taking them."""
    namespace = platform.process("like").env["RHIME_NAMESPACE"]
    nc = await nats.connect(platform.runtime.urls["nats"])
    try:
        js = nc.jetstream()
        stream = events.stream_name(namespace, events.DEAD_LETTER)
        sub = await js.subscribe(
            f"{namespace}.{events.DEAD_LETTER}.{durable}", stream=stream, ordered_consumer=True
        )
        found = []
        with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
            while True:
                msg = await sub.next_msg(timeout=1)
                body = json.loads(msg.data)
                found.append({**body, "data": json.loads(body["data"])})
        return found
    finally:
        await nc.close()


def kill(platform: local.Platform, names: Sequence[str]) -> None:
    for name in names:
        popen = platform.process(name).popen
        assert popen is not None
        assert popen.poll() is None, f"{name} is not running"
        popen.kill()
        popen.wait()


def restart(platform: local.Platform, names: Sequence[str]) -> None:
    for name in names:
        platform.process(name).start()


@pytest.fixture
def heal(platform: local.Platform) -> Any:
    """Whatever a test did, leave every component running and ready for the next tests."""
    yield
    for process in platform.supervisor.processes:
        if not process.running():
            process.start()
    platform.wait_ready(timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(360)
@pytest.mark.usefixtures("heal")
async def test_killing_workers_mid_stream_loses_and_doubles_nothing(
    platform: local.Platform,
) -> None:
    t = tag()
    names = [f"au{n}_{t}" for n in range(3)] + [f"fan{n}_{t}" for n in range(15)]
    async with people(platform, names) as everyone:
        authors, fans = everyone[:3], everyone[3:]
        # a follow can come before user-graph has seen the followee's user.created: not yet
        await asyncio.gather(
            *(retrying(lambda f=f, a=a: f.follow(a.user_id)) for f in fans for a in authors)
        )
        # Half the fans have a built timeline (fan-out on write), half are rebuilt on read.
        await asyncio.gather(*(f.home() for f in fans[::2]))
        track = (await authors[0].search_tracks("a", limit=1))[0]
        targets = [await a.post(track=track, caption="like me") for a in authors]

        # Each fan likes and unlikes the targets in a random order; what each fan did last
        # is the state that must survive.
        intended: dict[tuple[str, str], bool] = {}
        actions_per_fan = 14
        total = actions_per_fan * len(fans)
        done = 0
        progress = asyncio.Condition()

        async def fan_activity(n: int, fan: Session) -> None:
            nonlocal done
            rng = random.Random(n)
            for _ in range(actions_per_fan):
                item = rng.choice(targets)
                liked = not intended.get((fan.user_id, item), False)
                if rng.random() < 0.2:
                    liked = not liked  # sometimes repeat the current state
                assert await set_liked(fan, item, liked) is liked
                intended[(fan.user_id, item)] = liked
                async with progress:
                    done += 1
                    progress.notify_all()
                await asyncio.sleep(rng.uniform(0.05, 0.3))

        posted: list[str] = []

        async def author_activity(n: int, author: Session) -> None:
            rng = random.Random(100 + n)
            for k in range(4):
                posted.append(await author.post(track=track, caption=f"post {k}"))
                await asyncio.sleep(rng.uniform(0.3, 1.0))

        async def reached(count: int) -> None:
            async with progress:
                await progress.wait_for(lambda: done >= count)

        async def chaos() -> None:
            # Twice: kill while events flow, let some pile up, restart while they still flow.
            for down, up in ((0.15, 0.4), (0.55, 0.75)):
                await reached(int(total * down))
                await asyncio.to_thread(kill, platform, WORKERS)
                await reached(int(total * up))
                await asyncio.to_thread(restart, platform, WORKERS)

        await asyncio.gather(
            chaos(),
            *(fan_activity(n, f) for n, f in enumerate(fans)),
            *(author_activity(n, a) for n, a in enumerate(authors)),
        )
        assert done == total
        await asyncio.to_thread(platform.wait_ready, 60)
        # Every event handled, including those the killed processes had taken: what is
        # counted now is final (a redelivery could otherwise still double a count).
        await drained(
            platform,
            [
                ("like-batch-updater", events.LikeToggled.SUBJECT),
                ("like-updater", events.LikeToggled.SUBJECT),
                ("feed", events.PostCreated.SUBJECT),
            ],
        )

        expected = {
            item: sum(1 for (_, i), liked in intended.items() if i == item and liked)
            for item in targets
        }
        assert any(expected.values()), "the scenario should leave some likes"
        reader = authors[0]
        await eventually(lambda: like_counts(reader, targets), lambda c: c == expected)

        def mine(fan: Session) -> dict[str, bool]:
            return {i: intended.get((fan.user_id, i), False) for i in targets}

        seen = await asyncio.gather(*(liked_by(f, targets) for f in fans))
        assert seen == [mine(f) for f in fans]
        # Without the overlay of recent actions, what the like-updater persisted is the same.
        await drop_overlays(platform, fans)

        async def persisted(fan: Session) -> None:
            await eventually(lambda: liked_by(fan, targets), lambda v: v == mine(fan))

        await asyncio.gather(*map(persisted, fans))

        await all_in_timelines(fans, {*targets, *posted})
        assert len(posted) == 12


@pytest.mark.slow
@pytest.mark.usefixtures("heal")
@pytest.mark.parametrize("store", ["nats", "redis", "mongo"])
async def test_a_store_restart_under_load_loses_nothing(
    platform: local.Platform, store: str
) -> None:
    """Likes, a follow and posts sent while a store goes down and comes back: refused while
    it is down (the client retries what is safe to repeat), exact once it is back."""
    t = tag()
    names = [f"{store}author_{t}", *(f"{store}fan{n}_{t}" for n in range(4))]
    async with people(platform, names) as both:
        author, fans = both[0], both[1:]
        late, early = fans[-1], fans[:-1]
        await asyncio.gather(*(retrying(lambda f=f: f.follow(author.user_id)) for f in early))
        await asyncio.gather(*(f.home() for f in early[:2]))  # built; the others rebuild
        track = (await author.search_tracks("b", limit=1))[0]

        before = await author.post(track=track, caption="right before the restart")
        restarting = asyncio.create_task(asyncio.to_thread(platform.runtime.restart, store))
        await asyncio.gather(
            *(set_liked(f, before, True) for f in early),
            retrying(lambda: late.follow(author.user_id), timeout=60),
        )
        await restarting
        after = await retrying(
            lambda: author.post(track=track, caption="right after the restart"), timeout=60
        )
        await asyncio.gather(*(set_liked(f, after, True) for f in fans))

        await asyncio.to_thread(platform.wait_ready, 60)
        await all_in_timelines(fans, {after})
        await all_in_timelines(early, {before})
        expected = {before: len(early), after: len(fans)}
        await eventually(lambda: like_counts(author, [before, after]), lambda c: c == expected)
        await eventually(
            lambda: author.request("GET", f"/api/graph/users/{author.user_id}/counts"),
            lambda c: c["followers"] == len(fans),
        )
        await drop_overlays(platform, fans)

        async def persisted(fan: Session, items: list[str]) -> None:
            await eventually(
                lambda: liked_by(fan, items), lambda v: v == dict.fromkeys(items, True)
            )

        await asyncio.gather(
            *(persisted(f, [before, after]) for f in early), persisted(late, [after])
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("component", "dependency"),
    [("like-count", "redis"), ("like-count", "mongo"), ("like-updater", "nats")],
)
async def test_a_component_started_before_its_dependency_waits_for_it(
    platform: local.Platform, tmp_path: Path, component: str, dependency: str
) -> None:
    port, dependency_port = servers.free_port(), servers.free_port()
    later = servers.Runtime(
        directory=tmp_path / "later", names=(dependency,), ports={dependency: dependency_port}
    )
    template = platform.process(component).env
    env = {
        **template,
        "RHIME_PORT": str(port),
        "RHIME_NAMESPACE": f"late{tag()}",
        f"RHIME_{dependency.upper()}_URL": later.urls[dependency],
    }
    early = local.Process(
        component=catalogue.get(component), log=tmp_path / f"{component}.log", env=env
    )
    base = f"http://127.0.0.1:{port}"
    early.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def probe(path: str) -> int:
                try:
                    return (await client.get(path)).status_code
                except httpx.TransportError:
                    return 0

            await eventually(lambda: probe("/healthz"), lambda s: s == 200, timeout=30)
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["errors"]
            await asyncio.sleep(1.0)  # still waiting, not given up or crashed
            assert await probe("/readyz") == 503
            assert early.running()

            await asyncio.to_thread(later.start)
            await eventually(lambda: probe("/readyz"), lambda s: s == 200, timeout=30)
            if component == "like-count":
                secret = template["RHIME_INTERNAL_SECRET"]
                headers = {
                    identity.HEADER: identity.encode(
                        identity.Identity(user_id="0" * 24, user_name="x", spotify=True),
                        secret=secret,
                    )
                }
                item = "a" * 24
                r = await client.get(f"/api/like-counts/{item}", headers=headers)
                assert r.status_code == 200, r.text
                assert r.json() == {"count": 0}
    finally:
        early.stop()
        await asyncio.to_thread(early.wait, 15)
        await asyncio.to_thread(later.stop)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("heal")
async def test_events_fetched_while_redis_is_down_for_long_are_held_not_dead_lettered(
    platform: local.Platform,
) -> None:
    """like-batch-updater fetches likes while Redis stays down for longer than its
    redelivery schedule (five deliveries with backoff, 22.5 s, each failure logged, plus
    the wait for a fetch): it holds them and counts them once Redis is back; nothing is
    dead-lettered or left undelivered."""
    t = tag()
    async with people(platform, [f"outauthor_{t}", *(f"outfan{n}_{t}" for n in range(3))]) as all_:
        author, fans = all_[0], all_[1:]
        track = (await author.search_tracks("b", limit=1))[0]
        post = await author.post(track=track, caption="liked through an outage")
        await eventually(lambda: like_counts(author, [post]), lambda c: c == {post: 0})
        worker = platform.process("like-batch-updater").popen
        assert worker is not None
        worker.send_signal(signal.SIGSTOP)  # the likes wait in its consumer
        try:
            await asyncio.gather(*(set_liked(f, post, True) for f in fans))
            platform.runtime.servers["redis"].stop()
        finally:
            worker.send_signal(signal.SIGCONT)
        await asyncio.sleep(60)
        await asyncio.to_thread(platform.runtime.restart, "redis")
        await asyncio.to_thread(platform.wait_ready, 60)
        await eventually(lambda: like_counts(author, [post]), lambda c: c == {post: len(fans)})
    dead = await dead_letters(platform, "like-batch-updater-like-toggled")
    assert not [d for d in dead if d["data"]["item_id"] == post]
