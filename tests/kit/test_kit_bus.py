from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats.errors
import orjson
import pytest
import redis.asyncio
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from prometheus_client import generate_latest

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import bus, metrics, outbox, streams
from rhime.kit.settings import Settings
from rhime.runtime import servers
from tests import support
from tests.support import stream_gone


def created(n: int) -> events.UserCreated:
    return events.UserCreated(id=f"user.created:u{n}", user_id=f"u{n}", user_name=f"n{n}")


def consumer_app(settings: Any, handler: Any, **sub: Any) -> Any:
    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        return [bus.Subscription(event=events.UserCreated, handler=handler, **sub)]

    return kit_app.create_app(
        settings, title="consumer", database="bus", subscriptions=subscriptions, outboxes=["things"]
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_publish_consume_ack(make_settings: Callable[..., Any], serve: Any) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    served = await serve(consumer_app(make_settings(component="c1"), handler))
    kit: kit_app.Kit = served.app.state.kit
    for n in range(5):
        assert await kit.require_bus().publish(created(n))
    await wait_for(lambda: len(seen) == 5)
    assert seen == [f"u{n}" for n in range(5)]
    info = await kit.require_bus().js.consumer_info(
        events.stream_name(kit.settings.namespace, "user"), "c1-user-created"
    )
    await wait_for(lambda: True)
    assert info.num_ack_pending == 0


async def test_duplicate_publish_is_deduplicated(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.id)

    served = await serve(consumer_app(make_settings(component="c2"), handler))
    b = served.app.state.kit.require_bus()
    assert await b.publish(created(1)) is True
    assert await b.publish(created(1)) is False
    assert await b.publish(created(2)) is True
    await wait_for(lambda: len(seen) == 2)
    await asyncio.sleep(0.3)
    assert seen == ["user.created:u1", "user.created:u2"]


async def test_failing_handler_backs_off_then_dead_letters(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    attempts: list[float] = []

    async def handler(event: events.UserCreated) -> None:
        attempts.append(time.monotonic())
        raise ValueError("cannot handle this")

    settings = make_settings(component="c3", max_deliver=4, redelivery_backoff=(0.1, 0.3, 0.6))
    served = await serve(consumer_app(settings, handler))
    b: bus.Bus = served.app.state.kit.require_bus()
    dead = await b.js.pull_subscribe(
        b.subject("dlq.>"),
        durable="dlq-reader",
        stream=events.stream_name(settings.namespace, "dlq"),
    )
    await b.publish(created(7))
    await wait_for(lambda: len(attempts) == 4)
    msgs = await dead.fetch(1, timeout=5)
    body = orjson.loads(msgs[0].data)
    assert body["durable"] == "c3-user-created"
    assert "cannot handle this" in body["reason"]
    assert orjson.loads(body["data"])["user_id"] == "u7"
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.09, gaps
    assert gaps[1] >= 0.28, gaps
    assert gaps[2] >= 0.55, gaps
    await asyncio.sleep(1.0)
    assert len(attempts) == 4  # no delivery after the dead letter


async def test_consumer_killed_before_ack_gets_message_again(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    started = asyncio.Event()

    async def hang(event: events.UserCreated) -> None:
        started.set()
        await asyncio.sleep(3600)

    settings = make_settings(component="c4", shutdown_grace_seconds=0.1)
    first = await serve(consumer_app(settings, hang, ack_wait=1.0))
    await first.app.state.kit.require_bus().publish(created(9))
    await asyncio.wait_for(started.wait(), 10)
    await first.stop()  # dies mid-handler: no ack

    seen: list[int] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(1)

    await serve(consumer_app(settings, handler, ack_wait=1.0))
    await wait_for(lambda: len(seen) == 1)


async def test_outbox_event_survives_a_crash_before_publish(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    settings = make_settings(component="c5")
    # The write commits with its event staged; the process dies before publishing.
    client: Any = __import__("motor.motor_asyncio").motor_asyncio.AsyncIOMotorClient(
        settings.mongo_url
    )
    stale = created(3).model_copy(update={"occurred_at": events.now().replace(year=2020)})
    await client[settings.database_name("bus")]["things"].insert_one(
        {"_id": "thing-3", "name": "x", outbox.FIELD: outbox.staged(stale)}
    )
    # After the restart, the relay publishes it and the consumer receives it.
    served = await serve(consumer_app(settings, handler))
    await wait_for(lambda: seen == ["u3"])
    things = served.app.state.kit.database["things"]
    for _ in range(100):
        doc = await things.find_one({"_id": "thing-3"})
        if not doc[outbox.FIELD]:
            break
        await asyncio.sleep(0.05)
    assert doc == {"_id": "thing-3", "name": "x", outbox.FIELD: []}
    client.close()


async def test_flush_publishes_and_purges(make_settings: Callable[..., Any], serve: Any) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    served = await serve(consumer_app(make_settings(component="c6"), handler))
    kit: kit_app.Kit = served.app.state.kit
    things = kit.database["things"]
    await things.insert_one(
        {"_id": "t1", outbox.PURGE: True, outbox.FIELD: outbox.staged(created(4))}
    )
    await outbox.flush(kit, collection="things", doc_id="t1")
    assert await things.find_one({"_id": "t1"}) is None
    await wait_for(lambda: seen == ["u4"])
    assert await things.find_one({"_id": "t1"}) is None


async def test_request_id_crosses_the_event(make_settings: Callable[..., Any], serve: Any) -> None:
    from rhime.kit import logs

    ids: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        ids.append(logs.request_id.get())

    served = await serve(consumer_app(make_settings(component="c7"), handler))
    await served.app.state.kit.require_bus().publish(created(5), request_id="req-42")
    await wait_for(lambda: ids == ["req-42"])


async def test_streams_declared_idempotently(make_settings: Callable[..., Any]) -> None:
    settings = make_settings()
    b = await bus.Bus.connect(
        url=settings.nats_url, name="x", namespace=settings.namespace, metrics=metrics.create()
    )
    await b.ensure_streams()
    await b.ensure_streams()
    info = await b.js.stream_info(events.stream_name(settings.namespace, "like"))
    assert info.config.subjects == [f"{settings.namespace}.like.>"]
    assert info.config.duplicate_window == 600.0
    await b.close(grace=0)


async def test_slow_handler_is_not_redelivered_while_it_works(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    calls: list[str] = []

    async def slow(event: events.UserCreated) -> None:
        calls.append(event.user_id)
        await asyncio.sleep(0.6)  # the batch takes far beyond ack_wait; the heartbeat holds it

    app = consumer_app(make_settings(component="c8"), slow, ack_wait=1.0, timeout=0.9, batch=4)
    served = await serve(app)
    b = served.app.state.kit.require_bus()
    for n in range(4):
        await b.publish(created(n))
    await wait_for(lambda: len(calls) >= 4, timeout=15)
    await asyncio.sleep(2.0)
    assert calls == ["u0", "u1", "u2", "u3"]


async def test_hung_handler_is_cut_off_and_the_event_redelivered(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    calls: list[str] = []

    async def hangs_once(event: events.UserCreated) -> None:
        calls.append(event.user_id)
        if len(calls) == 1:
            await asyncio.Event().wait()  # a dependency that never answers

    served = await serve(
        consumer_app(make_settings(component="c9"), hangs_once, ack_wait=2.0, timeout=0.3)
    )
    await served.app.state.kit.require_bus().publish(created(1))
    await wait_for(lambda: len(calls) == 2)
    assert calls == ["u1", "u1"]


def test_a_handler_deadline_must_be_below_ack_wait() -> None:
    async def handler(event: events.UserCreated) -> None:
        pass

    with pytest.raises(ValueError, match="below its ack_wait"):
        bus.Subscription(event=events.UserCreated, handler=handler, ack_wait=5.0, timeout=5.0)


async def test_consumer_lives_on_when_dead_lettering_fails(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        if event.user_id == "u1":
            raise ValueError("poison")
        seen.append(event.user_id)

    settings = make_settings(component="c10", max_deliver=1)
    served = await serve(consumer_app(settings, handler, ack_wait=1.0))
    b: bus.Bus = served.app.state.kit.require_bus()
    # the dead-letter stream is gone, so dead-lettering u1 raises inside the consumer
    await b.js.delete_stream(events.stream_name(settings.namespace, "dlq"))
    await b.publish(created(1))
    await b.publish(created(2))
    await wait_for(lambda: seen == ["u2"])
    # once the stream is back, u1 (redelivered, never acked) reaches the dead letters
    await b.ensure_streams()
    dead = await b.js.pull_subscribe(
        b.subject("dlq.>"),
        durable="dlq-reader",
        stream=events.stream_name(settings.namespace, "dlq"),
    )
    msgs = await dead.fetch(1, timeout=10)
    assert orjson.loads(orjson.loads(msgs[0].data)["data"])["user_id"] == "u1"


async def test_consumer_reported_down_until_it_is_back(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    settings = make_settings(component="c11")
    served = await serve(consumer_app(settings, handler))
    b: bus.Bus = served.app.state.kit.require_bus()
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.get("/readyz")).status_code == 200
        # the stream and its consumer vanish (recreated by an operator, lost volume...)
        await b.js.delete_stream(events.stream_name(settings.namespace, "user"))
        r = await eventually(client, lambda r: r.status_code == 503)
        assert "c11-user-created is down" in r.text
        await b.ensure_streams()
        await eventually(client, lambda r: r.status_code == 200)
    await b.publish(created(3))
    await wait_for(lambda: seen == ["u3"])


async def eventually(client: httpx.AsyncClient, ok: Callable[[httpx.Response], bool]) -> Any:
    deadline = time.monotonic() + 20
    while True:
        r = await client.get("/readyz")
        if ok(r) or time.monotonic() > deadline:
            assert ok(r), r.text
            return r
        await asyncio.sleep(0.1)


async def test_changed_consumer_config_reaches_an_existing_durable(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = make_settings(component="c12")
    b = await bus.Bus.connect(
        url=settings.nats_url, name="x", namespace=settings.namespace, metrics=metrics.create()
    )
    await b.ensure_streams()
    stream = events.stream_name(settings.namespace, "user")
    # the durable as an earlier version left it
    await b.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="c12-user-created",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=120.0,
            max_ack_pending=1000,
            filter_subject=f"{settings.namespace}.user.created",
        ),
    )

    async def handler(event: events.UserCreated) -> None:
        pass

    await serve(consumer_app(settings, handler, ack_wait=3.0, batch=400))
    deadline = time.monotonic() + 10
    while True:
        info = await b.js.consumer_info(stream, "c12-user-created")
        if info.config.ack_wait != 120.0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (info.config.ack_wait, info.config.max_ack_pending) == (3.0, 1600)
    await b.close(grace=0)


async def test_streams_are_bounded_even_when_they_existed_before(
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings()
    b = await bus.Bus.connect(
        url=settings.nats_url, name="x", namespace=settings.namespace, metrics=metrics.create()
    )
    like = events.stream_name(settings.namespace, "like")
    # an unbounded stream, as earlier versions declared them
    await b.js.add_stream(
        StreamConfig(name=like, subjects=[f"{settings.namespace}.like.>"], duplicate_window=600.0)
    )
    await b.ensure_streams()
    for noun in (*events.STREAMS, events.DEAD_LETTER):
        config = (await b.js.stream_info(events.stream_name(settings.namespace, noun))).config
        limits = streams.LIMITS[noun]
        assert (config.max_age, config.max_bytes, config.discard) == (
            limits.max_age,
            limits.max_bytes(streams.DEFAULT_BUDGET),
            limits.discard,
        )
        assert config.duplicate_window is not None
        assert config.duplicate_window < config.max_age
    await b.close(grace=0)


def test_stream_limits_fit_the_default_nats_volume() -> None:
    volume = 1 << 30  # the operator's default NATS storage, 1 Gi
    # JetStream refuses streams whose max_bytes exceed its store limit (75 % of free space)
    assert sum(limits.share for limits in streams.LIMITS.values()) == 1
    assert volume // 2 >= streams.DEFAULT_BUDGET
    assert Settings.model_fields["stream_storage_bytes"].default == streams.DEFAULT_BUDGET
    assert set(streams.LIMITS) == {*events.STREAMS, events.DEAD_LETTER}


async def test_a_stream_near_its_limit_shows_in_metrics_and_readiness(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    async def handler(event: events.UserCreated) -> None:
        pass

    settings = make_settings(component="c13", stream_watch_seconds=0.1)
    served = await serve(consumer_app(settings, handler))
    b: bus.Bus = served.app.state.kit.require_bus()
    name = events.stream_name(settings.namespace, "user")
    for n in range(10):
        await b.publish(created(n))
    info = await b.js.stream_info(name)
    # shrink the limit so the stream is 90 % full
    await b.js.update_stream(
        dataclasses.replace(info.config, max_bytes=int(info.state.bytes / 0.9))
    )
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await eventually(client, lambda r: bool(r.json().get("warnings")))
        assert r.status_code == 200
        assert r.json()["warnings"] == [f"stream {name} is at 90% of its size limit"]
        scraped = (await client.get("/metrics")).text
    usage = [line for line in scraped.splitlines() if line.startswith("rhime_stream_usage_ratio{")]
    assert f'rhime_stream_usage_ratio{{stream="{name}"}} 0.9' in "\n".join(usage)


async def test_poison_in_the_outbox_is_set_aside_and_blocks_nothing(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    settings = make_settings(component="c14")
    client: Any = __import__("motor.motor_asyncio").motor_asyncio.AsyncIOMotorClient(
        settings.mongo_url
    )
    things = client[settings.database_name("bus")]["things"]
    old = events.now().replace(year=2020)
    poison = {"id": "a:1", "subject": "user.renamed", "data": {"occurred_at": old.isoformat()}}
    broken = {**outbox.staged(created(1))[0], "id": "a:2"}
    del broken["data"]["user_id"]
    del broken["data"]["occurred_at"]
    await things.insert_one({"_id": "bad", outbox.FIELD: [poison, broken]})
    good = created(2).model_copy(update={"occurred_at": old})
    await things.insert_one({"_id": "good", outbox.FIELD: outbox.staged(good)})
    served = await serve(consumer_app(settings, handler))
    await wait_for(lambda: seen == ["u2"])
    kit: kit_app.Kit = served.app.state.kit
    for _ in range(100):
        doc = await kit.database["things"].find_one({"_id": "bad"})
        if not doc[outbox.FIELD]:
            break
        await asyncio.sleep(0.05)
    assert [d["entry"]["id"] for d in doc[outbox.DEAD]] == ["a:1", "a:2"]
    assert "user.renamed" in doc[outbox.DEAD][0]["reason"]
    scraped = generate_latest(kit.metrics.registry).decode()
    assert 'rhime_outbox_dead_lettered_total{collection="things"} 2.0' in scraped
    client.close()


async def test_a_store_outage_longer_than_the_redelivery_schedule_dead_letters_nothing(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    """The handler writes to a Redis that is down for longer than two deliveries with their
    backoff take: the event waits for Redis and is handled once it is back, not dead-lettered."""
    own = servers.Runtime(directory=tmp_path, names=("redis",))
    own.start()
    store = redis.asyncio.Redis.from_url(own.urls["redis"], socket_timeout=0.3)
    attempts: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        attempts.append(event.user_id)
        await store.incr(f"seen:{event.user_id}")

    try:
        settings = make_settings(component="c-outage", max_deliver=2, redelivery_backoff=(0.05,))
        served = await serve(consumer_app(settings, handler))
        b: bus.Bus = served.app.state.kit.require_bus()
        dead = await b.js.pull_subscribe(
            b.subject("dlq.c-outage-user-created"),
            durable="dlq-outage-reader",
            stream=events.stream_name(settings.namespace, "dlq"),
        )
        own.servers["redis"].stop()
        await b.publish(created(41))
        await wait_for(lambda: len(attempts) >= 4)  # well past two deliveries
        await asyncio.to_thread(own.restart, "redis")
        await wait_for(lambda: attempts[-1:] == ["u41"] and len(attempts) > 4, timeout=20)

        async def handled() -> bool:
            return await store.get("seen:u41") == b"1"

        deadline = time.monotonic() + 20
        while not await handled():
            assert time.monotonic() < deadline, "not handled after the store came back"
            await asyncio.sleep(0.05)
        with pytest.raises(nats.errors.TimeoutError):
            await dead.fetch(1, timeout=1)
        info = await b.js.consumer_info(
            events.stream_name(settings.namespace, "user"), "c-outage-user-created"
        )
        assert info.num_ack_pending == 0
        assert info.num_redelivered == 0  # held through the outage, never handed out again
        async with httpx.AsyncClient(base_url=served.url) as client:
            scraped = (await client.get("/metrics")).text
        held = support.sample(scraped, "rhime_store_unavailable_total", store="redis")
        assert held is not None
        assert held >= 3  # each attempt that met the outage
    finally:
        await store.aclose()
        own.stop()


async def test_events_the_outbox_cannot_publish_show_as_its_backlog(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    """While the stream refuses events, what stays staged is counted and its age grows; once
    the relay publishes it the backlog is empty again."""
    seen: list[str] = []

    async def handler(event: events.UserCreated) -> None:
        seen.append(event.user_id)

    settings = make_settings(component="c15")
    served = await serve(consumer_app(settings, handler))
    kit: kit_app.Kit = served.app.state.kit
    things = kit.database["things"]
    async with httpx.AsyncClient(base_url=served.url) as client:

        async def backlog() -> tuple[float | None, float | None]:
            scraped = (await client.get("/metrics")).text
            return (
                support.sample(scraped, "rhime_outbox_staged_events", collection="things"),
                support.sample(scraped, "rhime_outbox_oldest_staged_seconds", collection="things"),
            )

        async def empty() -> None:
            assert await backlog() == (0.0, 0.0)

        await support.eventually(empty)
        async with stream_gone(settings, "user"):
            staged = [
                created(n).model_copy(update={"occurred_at": events.now().replace(year=2020)})
                for n in (1, 2)
            ]
            await things.insert_one({"_id": "a", outbox.FIELD: outbox.staged(*staged)})

            async def stuck() -> None:
                count, age = await backlog()
                assert count == 2
                assert age is not None
                assert age > 365 * 86400

            await support.eventually(stuck)
        await support.eventually(empty)
    await wait_for(lambda: sorted(seen) == ["u1", "u2"])


async def test_a_lost_nats_connection_is_counted(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    own = servers.Runtime(directory=tmp_path, names=("nats",))
    own.start()
    try:

        async def handler(event: events.UserCreated) -> None:
            pass

        settings = make_settings(component="c16", nats_url=own.urls["nats"])
        served = await serve(consumer_app(settings, handler))
        async with httpx.AsyncClient(base_url=served.url) as client:

            async def disconnects() -> float | None:
                scraped = (await client.get("/metrics")).text
                return support.sample(scraped, "rhime_nats_disconnects_total")

            assert await disconnects() == 0
            own.servers["nats"].stop()

            async def counted() -> None:
                assert await disconnects() == 1

            await support.eventually(counted)
            await asyncio.to_thread(own.restart, "nats")
            b: bus.Bus = served.app.state.kit.require_bus()
            await wait_for(lambda: b.nc.is_connected, timeout=20)
    finally:
        own.stop()
