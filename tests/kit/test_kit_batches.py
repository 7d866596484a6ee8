"""Batch consumers (`kit.batches`) on a real JetStream: a handler gets whole batches, acked
after it returns; the batch in hand neither expires while held nor is left behind at stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from rhime import events
from rhime.kit import batches, bus, metrics
from tests.kit.test_kit_bus import created, wait_for
from tests.support import eventually


async def _bus(make_settings: Callable[..., Any]) -> bus.Bus:
    settings = make_settings(redelivery_backoff=(0.05,))
    b = await bus.Bus.connect(
        url=settings.nats_url,
        name="batches",
        namespace=settings.namespace,
        metrics=metrics.create(),
        backoff=settings.redelivery_backoff,
    )
    await b.ensure_streams()
    return b


async def _unsettled(b: bus.Bus, durable: str) -> int:
    stream = events.stream_name(b.namespace, events.noun(events.UserCreated.SUBJECT))
    info = await b.js.consumer_info(stream, bus.durable_name(durable, events.UserCreated))
    return (info.num_ack_pending or 0) + (info.num_pending or 0)


async def _settled(b: bus.Bus, durable: str) -> None:
    assert await _unsettled(b, durable) == 0


async def test_a_batch_held_past_ack_wait_is_handled_once(
    make_settings: Callable[..., Any],
) -> None:
    """Lingering for more events and then a slow write take longer than ack_wait: the
    heartbeat keeps the batch in hand, so JetStream hands none of it out again."""
    calls: list[list[str]] = []

    async def slow(batch: Sequence[events.UserCreated]) -> None:
        calls.append([e.user_id for e in batch])
        await asyncio.sleep(0.6)

    b = await _bus(make_settings)
    try:
        sub = batches.Batches(
            event=events.UserCreated, handler=slow, ack_wait=1.0, timeout=0.9, linger=0.9
        )
        b.start(sub, component="held")
        for n in range(4):
            await b.publish(created(n))
        await wait_for(lambda: sum(map(len, calls)) >= 4, timeout=15)
        await asyncio.sleep(2.0)  # time for a redelivery, were there one
        assert sorted(u for batch in calls for u in batch) == ["u0", "u1", "u2", "u3"]
        assert await _unsettled(b, "held") == 0
    finally:
        await b.close(grace=0)


async def test_the_batch_in_hand_is_settled_before_the_bus_stops(
    make_settings: Callable[..., Any],
) -> None:
    handled: list[str] = []

    async def handle(batch: Sequence[events.UserCreated]) -> None:
        handled.extend(e.user_id for e in batch)

    b = await _bus(make_settings)
    sub = batches.Batches(event=events.UserCreated, handler=handle, linger=60.0)
    b.start(sub, component="stops")
    for n in range(3):
        await b.publish(created(n))
    await asyncio.sleep(1.0)  # fetched and lingering: nothing handled yet
    assert handled == []
    await b.close(grace=10)
    assert sorted(handled) == ["u0", "u1", "u2"]
    checker = await _bus(make_settings)
    try:
        assert await _unsettled(checker, "stops") == 0  # acked, not left to ack_wait
    finally:
        await checker.close(grace=0)


async def test_a_hung_batch_handler_is_cut_off_and_its_events_retried(
    make_settings: Callable[..., Any],
) -> None:
    handled: list[str] = []
    calls: list[int] = []

    async def hangs_once(batch: Sequence[events.UserCreated]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            await asyncio.Event().wait()  # a store that never answers
        handled.extend(e.user_id for e in batch)

    b = await _bus(make_settings)
    try:
        sub = batches.Batches(
            event=events.UserCreated, handler=hangs_once, ack_wait=3.0, timeout=0.3
        )
        b.start(sub, component="hung")
        await b.publish(created(1))
        await wait_for(lambda: handled == ["u1"], timeout=10)
    finally:
        await b.close(grace=0)


async def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_goes_through(
    make_settings: Callable[..., Any],
) -> None:
    handled: list[str] = []

    async def fails_on_u2(batch: Sequence[events.UserCreated]) -> None:
        if any(e.user_id == "u2" for e in batch):
            raise ValueError("cannot handle u2")
        handled.extend(e.user_id for e in batch)

    b = await _bus(make_settings)
    try:
        dead = await b.js.pull_subscribe(
            b.subject("dlq.>"),
            durable="dlq-reader",
            stream=events.stream_name(b.namespace, "dlq"),
        )
        sub = batches.Batches(event=events.UserCreated, handler=fails_on_u2, linger=0.5)
        b.start(sub, component="poison")
        for n in range(4):
            await b.publish(created(n))
        await wait_for(lambda: sorted(handled) == ["u0", "u1", "u3"], timeout=15)
        (letter,) = await dead.fetch(1, timeout=15)
        body = orjson.loads(letter.data)
        assert body["durable"] == "poison-user-created"
        assert orjson.loads(body["data"])["user_id"] == "u2"
        await eventually(lambda: _settled(b, "poison"))
    finally:
        await b.close(grace=0)
