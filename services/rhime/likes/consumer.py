"""A durable pull consumer that hands its handler a whole batch and acks only after the
handler returns, so a worker can coalesce many events into one bulk write and still lose
nothing when it dies before that write committed (the batch is simply redelivered).

The kit's `bus.Subscription` acks message by message; the like workers need the batch.
Naming follows the kit (`{component}-{subject with dashes}`), so replicas share the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError

from rhime import events
from rhime.kit import logs, traces
from rhime.kit.bus import through_outage

if TYPE_CHECKING:
    from rhime.kit.app import Kit

log = logging.getLogger("rhime.likes.consumer")

E = TypeVar("E", bound=events.Event)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchConsumer(Generic[E]):
    event: type[E]
    handler: Callable[[Sequence[E]], Awaitable[None]]
    batch: int = 500  # most messages handed over at once
    window: float = 0.2  # seconds a fetch waits to fill the batch
    # seconds the first message of a batch may wait for more fetches to join it: a longer
    # batch coalesces more events per key into one write (acked after it, so nothing is lost)
    linger: float = 0.0
    ack_wait: float = 60.0
    # the handler's deadline per call; below ack_wait, so a hung handler fails (and its
    # events are retried) before JetStream would hand them to another replica anyway
    timeout: float | None = None
    # told the highest stream sequence of each batch (or event) once it is acked
    acked: Callable[[int], None] | None = None

    @property
    def deadline(self) -> float:
        return self.timeout if self.timeout is not None else self.ack_wait * 2 / 3


# The highest stream sequence of the batch being handled, for handlers that keep their own
# progress (the batch updater notices by it that Redis lost writes it had acked).
last_sequence: contextvars.ContextVar[int] = contextvars.ContextVar("last_sequence", default=0)


def durable_name(component: str, event: type[events.Event]) -> str:
    return f"{component}-{event.SUBJECT.replace('.', '-')}"


async def run(kit: Kit, consumer: BatchConsumer[Any]) -> None:
    """Consume (a kit task, restarted by the kit if it fails): fetch, hand over the valid
    events, ack them. A fetch error other than a timeout ends the run: the kit reports the
    task down and subscribes again with backoff."""
    bus = kit.require_bus()
    durable = durable_name(kit.settings.component or "rhime", consumer.event)
    psub = await bus.subscribe(
        consumer.event, durable=durable, ack_wait=consumer.ack_wait, batch=consumer.batch
    )
    held: list[Msg] = []
    since = last_lag = 0.0
    while True:
        try:
            msgs = await psub.fetch(consumer.batch - len(held), timeout=consumer.window)
        except (TimeoutError, nats.errors.TimeoutError):
            msgs = []
        if time.monotonic() - last_lag > 5:  # as the kit's consumers report it
            last_lag = time.monotonic()
            await bus.report_lag(psub, durable)
        if msgs and not held:
            since = time.monotonic()
        held.extend(msgs)
        if not held:
            continue
        if len(held) < consumer.batch and time.monotonic() - since < consumer.linger:
            continue
        try:
            await _handle(kit, consumer, durable, held)
        except Exception:
            # an ack, nak or dead letter failed (NATS unreachable?): what was not settled
            # comes back after ack_wait
            log.error("could not settle a batch on %s", durable, exc_info=True)
        held = []


async def _handle(kit: Kit, consumer: BatchConsumer[Any], durable: str, msgs: list[Msg]) -> None:
    good: list[tuple[Msg, events.Event]] = []
    for msg in msgs:
        try:
            event = consumer.event.model_validate_json(msg.data)
        except ValidationError as exc:
            await _dead_letter(kit, consumer, msg, durable, f"invalid payload: {exc}")
            continue
        if (msg.metadata.num_delivered or 1) > kit.settings.max_deliver:
            await _dead_letter(kit, consumer, msg, durable, "delivered too many times")
            continue
        good.append((msg, event))
    if not good:
        return

    async def attempt() -> None:
        last_sequence.set(max(_sequence(msg) for msg, _ in good))
        async with asyncio.timeout(consumer.deadline):
            await consumer.handler([event for _, event in good])

    bus = kit.require_bus()
    try:
        held = [msg for msg, _ in good]
        with traces.OFF if kit.tracing is None else _span(kit.tracing, consumer, durable, good):
            if not await through_outage(
                attempt, held=held, stopping=bus.stopping, label=durable, metrics=bus.metrics
            ):
                return
    except Exception:
        log.warning(
            "batch of %d failed on %s; retrying one by one", len(good), durable, exc_info=True
        )
        for msg, event in good:
            await _one(kit, consumer, durable, msg, event)
        return
    for msg, _ in good:
        await msg.ack()
    if consumer.acked is not None:
        consumer.acked(max(_sequence(msg) for msg, _ in good))
    kit.metrics.consumed.labels(consumer.event.SUBJECT, durable, "ok").inc(len(good))


def _span(
    tracing: traces.Tracing,
    consumer: BatchConsumer[Any],
    durable: str,
    good: list[tuple[Msg, events.Event]],
) -> contextlib.AbstractContextManager[traces.Span]:
    attributes = {
        "messaging.destination.name": good[0][0].subject,
        "messaging.consumer.group.name": durable,
        "messaging.batch.message_count": str(len(good)),
    }
    rids = {(msg.headers or {}).get(logs.HEADER, "") for msg, _ in good}
    if len(rids) == 1 and "" not in rids:
        attributes[traces.REQUEST_ID] = rids.pop()
    return tracing.batch(
        f"process {consumer.event.SUBJECT}",
        [msg.headers for msg, _ in good],
        attributes=attributes,
    )


async def _one(
    kit: Kit, consumer: BatchConsumer[Any], durable: str, msg: Msg, event: events.Event
) -> None:
    """A failed batch is retried event by event, so one poison message cannot hold the rest."""

    async def attempt() -> None:
        last_sequence.set(_sequence(msg))
        async with asyncio.timeout(consumer.deadline):
            await consumer.handler([event])

    bus = kit.require_bus()
    try:
        if not await through_outage(
            attempt, held=[msg], stopping=bus.stopping, label=durable, metrics=bus.metrics
        ):
            return
    except Exception as exc:
        delivered = msg.metadata.num_delivered or 1
        if delivered >= kit.settings.max_deliver:
            await _dead_letter(kit, consumer, msg, durable, repr(exc))
        else:
            backoff = kit.settings.redelivery_backoff or (1.0,)
            await msg.nak(delay=backoff[min(delivered, len(backoff)) - 1])
        return
    await msg.ack()
    if consumer.acked is not None:
        consumer.acked(_sequence(msg))


def _sequence(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)


async def _dead_letter(
    kit: Kit, consumer: BatchConsumer[Any], msg: Msg, durable: str, reason: str
) -> None:
    await kit.require_bus().dead_letter(msg, consumer.event.SUBJECT, durable, reason)
