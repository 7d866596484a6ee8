"""A durable consumer that hands its handler a whole batch and acks only after the handler
returns, so a worker can coalesce many events into one bulk write and still lose nothing when
it dies before that write committed (the batch is simply redelivered).

Everything else is as for `bus.Subscription`: one consumer per component (replicas share
it), invalid payloads and events delivered too often dead-lettered, a store outage held
through, a heartbeat that keeps the messages in hand from reaching ack_wait, the batch in
hand handled before the component stops. A batch that fails is retried event by event, so
one poison message cannot hold the rest.
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

from rhime import events
from rhime.kit import logs, traces

if TYPE_CHECKING:
    from rhime.kit.bus import Bus

log = logging.getLogger("rhime.batches")

E = TypeVar("E", bound=events.Event)

# The highest stream sequence of the batch being handled, for handlers that keep their own
# progress (the like batch updater notices by it that Redis lost writes it had acked).
last_sequence: contextvars.ContextVar[int] = contextvars.ContextVar("last_sequence", default=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Batches(Generic[E]):
    event: type[E]
    handler: Callable[[Sequence[E]], Awaitable[None]]
    durable: str = ""
    batch: int = 500  # most messages handed over at once
    window: float = 0.2  # seconds a fetch waits to fill the batch
    # seconds the first message of a batch may wait for more fetches to join it: a longer
    # batch coalesces more events per key into one write (acked after it, so nothing is lost)
    linger: float = 0.0
    ack_wait: float = 60.0
    # the handler's deadline per call (default: two thirds of ack_wait), so a hung handler
    # fails and its events are retried
    timeout: float | None = None
    # told the highest stream sequence of each batch (or event) once it is acked
    acked: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.deadline < self.ack_wait:
            raise ValueError("a consumer's timeout must be positive and below its ack_wait")

    @property
    def deadline(self) -> float:
        return self.timeout if self.timeout is not None else self.ack_wait * 2 / 3

    async def consume(self, bus: Bus, name: str) -> None:
        """Fetch, hand over, ack, until the bus stops (the bus runs this, supervised)."""
        psub = await bus.subscribe(
            self.event, durable=name, ack_wait=self.ack_wait, batch=self.batch
        )
        held: list[Msg] = []
        beat = asyncio.create_task(bus.keep_in_progress(held, self.ack_wait))
        try:
            await self._loop(bus, name, psub, held)
        finally:
            beat.cancel()
            if held:  # a fetch failed with a batch in hand: it comes back after ack_wait
                bus.end()

    async def _loop(self, bus: Bus, name: str, psub: Any, held: list[Msg]) -> None:
        since = last_lag = 0.0
        while True:
            stopping = bus.stopping.is_set()
            if not stopping:
                try:
                    msgs = await psub.fetch(self.batch - len(held), timeout=self.window)
                except (TimeoutError, nats.errors.TimeoutError):  # nats-py raises either
                    msgs = []
                bus.tasks.up(name)
                if msgs and not held:
                    since = time.monotonic()
                    bus.begin()  # the bus waits for a batch in hand before it stops
                held.extend(msgs)
            if held and (
                stopping or len(held) >= self.batch or time.monotonic() - since >= self.linger
            ):
                try:
                    await self._settle(bus, name, list(held))
                except Exception:
                    # an ack, nak or dead letter failed (NATS unreachable?): what was not
                    # settled comes back after ack_wait
                    log.error("could not settle a batch on %s", name, exc_info=True)
                finally:
                    held.clear()
                    bus.end()
            if stopping:
                return
            if time.monotonic() - last_lag > 5:
                last_lag = time.monotonic()
                await bus.report_lag(psub, name)

    async def _settle(self, bus: Bus, name: str, msgs: list[Msg]) -> None:
        subject = self.event.SUBJECT
        good: list[tuple[Msg, E]] = []
        for msg in msgs:
            event = await bus.admit(msg, self.event, name)
            if event is not None:
                good.append((msg, event))
        if not good:
            return

        async def attempt() -> None:
            last_sequence.set(max(_sequence(msg) for msg, _ in good))
            async with asyncio.timeout(self.deadline):
                await self.handler([event for _, event in good])

        started = time.perf_counter()
        try:
            with traces.OFF if bus.tracing is None else self._span(bus.tracing, name, good):
                if not await bus.through_outage(attempt, held=[m for m, _ in good], label=name):
                    return
        except Exception:
            log.warning(
                "batch of %d failed on %s; retrying one by one", len(good), name, exc_info=True
            )
            for msg, event in good:
                await self._one(bus, name, msg, event)
            return
        bus.metrics.handling.labels(subject).observe(time.perf_counter() - started)
        for msg, _ in good:
            await msg.ack()
        if self.acked is not None:
            self.acked(max(_sequence(msg) for msg, _ in good))
        bus.metrics.consumed.labels(subject, name, "ok").inc(len(good))

    async def _one(self, bus: Bus, name: str, msg: Msg, event: E) -> None:
        async def attempt() -> None:
            last_sequence.set(_sequence(msg))
            async with asyncio.timeout(self.deadline):
                await self.handler([event])

        try:
            if not await bus.through_outage(attempt, held=[msg], label=name):
                return
        except Exception as exc:
            await bus.retry_or_dead_letter(msg, self.event.SUBJECT, name, exc)
            return
        await msg.ack()
        if self.acked is not None:
            self.acked(_sequence(msg))
        bus.metrics.consumed.labels(self.event.SUBJECT, name, "ok").inc()

    def _span(
        self, tracing: traces.Tracing, name: str, good: list[tuple[Msg, E]]
    ) -> contextlib.AbstractContextManager[traces.Span]:
        attributes = {
            "messaging.destination.name": good[0][0].subject,
            "messaging.consumer.group.name": name,
            "messaging.batch.message_count": str(len(good)),
        }
        rids = {(msg.headers or {}).get(logs.HEADER, "") for msg, _ in good}
        if len(rids) == 1 and "" not in rids:
            attributes[traces.REQUEST_ID] = rids.pop()
        return tracing.batch(
            f"process {self.event.SUBJECT}",
            [msg.headers for msg, _ in good],
            attributes=attributes,
        )


def _sequence(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)
