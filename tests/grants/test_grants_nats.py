"""Each component's NATS user publishes its own events and runs its own consumers only (a real
NATS with JetStream, configured as the platform configures it); nobody gets in anonymously."""

from __future__ import annotations

import asyncio
import datetime
import json
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest

from rhime import catalogue, events, grants
from rhime.kit import bus, metrics
from rhime.runtime import servers

NS = "grants"
NATS_USERS = [c for c in catalogue.COMPONENTS if grants.uses(c, catalogue.Backing.NATS)]
PUBLISHED = {s for c in NATS_USERS for s in c.publishes}


@pytest.fixture(scope="module")
def access() -> grants.Access:
    return grants.Access(seed=secrets.token_urlsafe(16), namespace=NS, admin=True)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory, access: grants.Access) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("nats-grants")
    with servers.running(directory=directory, names=("nats",), access=access) as runtime:
        yield runtime.urls["nats"]


@pytest.fixture
async def as_component(nats_url: str, access: grants.Access) -> AsyncIterator[Any]:
    opened: list[Any] = []

    async def connect(component: str) -> Any:
        nc = await nats.connect(
            access.url(nats_url, user=component),
            inbox_prefix=grants.inbox_prefix(component),
            allow_reconnect=False,
        )
        opened.append(nc)
        return nc

    yield connect
    for nc in opened:
        await nc.close()


class Seen:
    """Subjects a subscription received, in order."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self._more = asyncio.Event()

    async def note(self, msg: Any) -> None:
        self.subjects.append(msg.subject)
        self._more.set()

    async def until(self, marker: str) -> None:
        """Wait for `marker`: a connection's messages arrive in order, so whatever it sent
        before the marker and is not here by then was refused."""
        while marker not in self.subjects:
            self._more.clear()
            await self._more.wait()


@pytest.fixture
async def watch(nats_url: str) -> AsyncIterator[Any]:
    """`await watch(*subjects)`: what the admin sees published to `subjects`, in order."""
    admin = await nats.connect(nats_url)

    async def start(*subjects: str) -> Seen:
        seen = Seen()
        for subject in subjects:
            await admin.subscribe(subject, cb=seen.note)
        await admin.flush()
        return seen

    yield start
    await admin.close()


async def _hello(url: str, credentials: dict[str, str]) -> bytes:
    """The server's answer to a CONNECT with `credentials` and a PING."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        await reader.readline()  # INFO
        connect = json.dumps({"verbose": False, "pedantic": False, **credentials})
        writer.write(f"CONNECT {connect}\r\nPING\r\n".encode())
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_an_anonymous_or_unknown_connection_is_refused(
    nats_url: str, access: grants.Access
) -> None:
    assert await _hello(nats_url, {"user": "post", "pass": access.password("post")}) == b"PONG\r\n"
    for credentials in ({}, {"user": "gateway", "pass": access.password("post")}):
        answer = await _hello(nats_url, credentials)
        assert answer.startswith(b"-ERR 'Authorization Violation'"), answer


@pytest.mark.parametrize("component", [c.name for c in NATS_USERS])
async def test_a_component_publishes_its_own_events_and_no_one_elses(
    component: str, as_component: Any, watch: Any
) -> None:
    # last, a subject every component may publish to (it declares the streams at start)
    marker = f"$JS.API.STREAM.UPDATE.{events.stream_name(NS, events.DEAD_LETTER)}"
    seen = await watch(f"{NS}.>", marker)
    nc = await as_component(component)
    own = catalogue.get(component).publishes
    for subject in sorted(PUBLISHED):
        await nc.publish(f"{NS}.{subject}", b"{}")
    await nc.publish(f"{NS}.{events.DEAD_LETTER}.someone-else", b"{}")
    await nc.publish(marker, b"{}")
    await nc.flush()
    await asyncio.wait_for(seen.until(marker), 10)
    assert set(seen.subjects) == {f"{NS}.{s}" for s in own} | {marker}


@pytest.mark.parametrize("component", [c.name for c in NATS_USERS])
async def test_a_component_reads_only_its_own_inbox(
    component: str, as_component: Any, nats_url: str
) -> None:
    got = Seen()
    nc = await as_component(component)

    others = sorted({c.name for c in NATS_USERS} - {component})
    for other in others:
        await nc.subscribe(f"{grants.inbox_prefix(other)}.>", cb=got.note)
    await nc.subscribe(f"{NS}.post.created", cb=got.note)  # events reach it through consumers only
    own = f"{grants.inbox_prefix(component)}.marker"
    await nc.subscribe(own, cb=got.note)
    await nc.flush()
    admin = await nats.connect(nats_url)
    try:
        for other in others:
            await admin.publish(f"{grants.inbox_prefix(other)}.x", b"")
        await admin.publish(f"{NS}.post.created", b"{}")
        await admin.publish(own, b"")
        await admin.flush()
        await asyncio.wait_for(got.until(own), 10)
    finally:
        await admin.close()
    assert got.subjects == [own]


async def test_a_consumer_runs_and_dead_letters_with_its_own_user_only(
    as_component: Any, access: grants.Access, nats_url: str, watch: Any
) -> None:
    """feed consumes post.created published by post; a handler that fails dead-letters."""
    post = await bus.Bus.connect(
        url=access.url(nats_url, user="post"), name="post", namespace=NS, metrics=metrics.create()
    )
    feed = await bus.Bus.connect(
        url=access.url(nats_url, user="feed"),
        name="feed",
        namespace=NS,
        metrics=metrics.create(),
        max_deliver=2,
        backoff=(0.05,),
    )
    seen: list[str] = []
    received = asyncio.Event()

    async def handle(event: events.PostCreated) -> None:
        seen.append(event.post_id)
        if event.post_id == "bad":
            raise RuntimeError("poison")
        received.set()

    dead_letters = f"{NS}.{events.DEAD_LETTER}.{grants.durable('feed', 'post.created')}"
    dead = await watch(dead_letters)
    try:
        await post.ensure_streams()
        await feed.ensure_streams()
        feed.start(bus.Subscription(event=events.PostCreated, handler=handle), component="feed")
        now = datetime.datetime.now(tz=datetime.UTC)
        for post_id in ("bad", "good"):
            event = events.PostCreated(
                id=f"post.created:{post_id}", post_id=post_id, user_id="u1", created_at=now
            )
            assert await post.publish(event)
        await asyncio.wait_for(received.wait(), 20)
        await asyncio.wait_for(dead.until(dead_letters), 20)
        assert seen.count("bad") == 2
    finally:
        await feed.close(grace=1)
        await post.close(grace=1)

    # the like component may not read feed's consumer, nor delete or purge a stream
    nc = await as_component("like")
    stream = events.stream_name(NS, "post")
    for api in (
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{grants.durable('feed', 'post.created')}",
        f"$JS.API.CONSUMER.DELETE.{stream}.{grants.durable('feed', 'post.created')}",
        f"$JS.API.STREAM.PURGE.{stream}",
        f"$JS.API.STREAM.DELETE.{stream}",
    ):
        with pytest.raises(nats.errors.TimeoutError):  # refused: no one answers
            await nc.request(api, b"", timeout=0.5)
    admin = await nats.connect(nats_url)
    try:
        js = admin.jetstream()
        assert (await js.stream_info(stream)).state.messages == 2
        info = await js.consumer_info(stream, grants.durable("feed", "post.created"))
        assert info.num_pending == 0
        assert info.num_ack_pending == 0
    finally:
        await admin.close()


async def _watching_bus(access: grants.Access, nats_url: str, component: str) -> bus.Bus:
    """A component's bus with its own user, watching the streams often."""
    return await bus.Bus.connect(
        url=access.url(nats_url, user=component),
        name=component,
        namespace=NS,
        metrics=metrics.create(),
        stream_watch_seconds=0.05,
    )


@pytest.mark.parametrize("component", [c.name for c in NATS_USERS])
async def test_a_component_watches_every_stream_with_its_own_user(
    component: str, access: grants.Access, nats_url: str
) -> None:
    """Every component's readiness reports streams near their limit, so its user reads their
    sizes (a refused read would keep it not ready)."""
    watcher = await _watching_bus(access, nats_url, component)
    try:
        await watcher.ensure_streams()
        watcher.watch_streams()
        names = {events.stream_name(NS, n) for n in (*events.STREAMS, events.DEAD_LETTER)}
        while set(watcher._stream_usage) != names:
            assert not watcher.problems(), watcher.problems()
            await asyncio.sleep(0.05)
        assert not watcher.problems()
    finally:
        await watcher.close(grace=1)


async def test_the_batch_updater_reads_the_like_updaters_progress_and_no_one_else_does(
    as_component: Any, nats_url: str
) -> None:
    """After a Redis loss the batch updater waits for the like-updater's ack floor."""
    stream = events.stream_name(NS, "like")
    durable = grants.durable("like-updater", "like.toggled")
    admin = await nats.connect(nats_url)
    try:
        js = admin.jetstream()
        await bus.Bus(
            nc=admin, namespace=NS, metrics=metrics.create(), max_deliver=2, backoff=()
        ).ensure_streams()
        await js.add_consumer(stream, nats.js.api.ConsumerConfig(durable_name=durable))
    finally:
        await admin.close()
    watcher = (await as_component("like-batch-updater")).jetstream()
    assert (await watcher.consumer_info(stream, durable)).name == durable
    for other in ("post", "feed"):  # (like publishes the events: it reads their lag)
        with pytest.raises(nats.errors.TimeoutError):  # refused: no one answers
            await (await as_component(other)).jetstream(timeout=0.5).consumer_info(stream, durable)


PUBLISHERS = [c.name for c in NATS_USERS if grants.downstream(c, namespace=NS)]


@pytest.mark.parametrize("component", PUBLISHERS)
async def test_a_publisher_reads_the_lag_of_its_events_consumers_only(
    component: str, access: grants.Access, nats_url: str, as_component: Any
) -> None:
    """`rhime_downstream_pending`: the publisher reads each consumer of its events, with its
    own user; another component's consumers stay closed to it."""
    downstream = grants.downstream(catalogue.get(component), namespace=NS)
    admin = await nats.connect(nats_url)
    watcher = await _watching_bus(access, nats_url, component)
    try:
        await watcher.ensure_streams()
        js = admin.jetstream()
        subjects = {grants.durable(c.name, s): s for c in catalogue.COMPONENTS for s in c.consumes}
        for stream, durable in downstream:
            try:
                await js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:  # not made by an earlier test
                await js.add_consumer(
                    stream,
                    durable_name=durable,
                    filter_subject=f"{NS}.{subjects[durable]}",
                    ack_policy="explicit",
                )
        watcher.watch_streams(downstream=downstream)
        gauge = watcher.metrics.downstream_pending
        wanted = {durable for _, durable in downstream}
        while {s.labels["durable"] for m in gauge.collect() for s in m.samples} != wanted:
            assert not watcher.problems(), watcher.problems()
            await asyncio.sleep(0.05)
        assert not watcher.problems()
    finally:
        await watcher.close(grace=1)
        await admin.close()
    theirs = {
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}"
        for c in NATS_USERS
        for stream, durable in grants.downstream(c, namespace=NS)
    } - set(grants.nats_permissions(catalogue.get(component), namespace=NS)["publish"]["allow"])
    assert theirs
    nc = await as_component(component)
    for api in sorted(theirs)[:3]:
        with pytest.raises(nats.errors.TimeoutError):  # refused: no one answers
            await nc.request(api, b"", timeout=0.5)
