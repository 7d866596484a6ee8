from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import orjson

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import bus, outbox


def created(n: int) -> events.UserCreated:
    return events.UserCreated(
        id=f"user.created:u{n}", user_id=f"u{n}", user_name=f"n{n}", email=f"u{n}@example.com"
    )


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
    from rhime.kit import metrics

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
        await asyncio.sleep(2.5)  # far beyond ack_wait; the heartbeat keeps it ours

    served = await serve(consumer_app(make_settings(component="c8"), slow, ack_wait=1.0, batch=2))
    b = served.app.state.kit.require_bus()
    await b.publish(created(1))
    await b.publish(created(2))
    await wait_for(lambda: len(calls) >= 2, timeout=15)
    await asyncio.sleep(3.0)
    assert calls == ["u1", "u2"]
