"""Events over NATS JetStream: idempotent, bounded stream declarations, de-duplicated publishing
and durable pull consumers with explicit ack, a deadline per message, bounded redelivery with
backoff and a dead-letter subject. Consumers run supervised: a consumer that fails is logged,
reported down and restarted with backoff, never left dead."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from rhime import events, grants
from rhime.kit import batches, errors, logs, streams, supervisor, traces
from rhime.kit.metrics import Metrics

log = logging.getLogger("rhime.bus")

E = TypeVar("E", bound=events.Event)
Handler = Callable[[E], Awaitable[None]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Subscription(Generic[E]):
    """A durable consumer of one event type. `durable` defaults to the component's name, so
    every replica of a component shares one consumer (work is split between them)."""

    event: type[E]
    handler: Handler[E]
    durable: str = ""
    batch: int = 64
    # Short, so a crashed consumer's messages come back within seconds; a heartbeat keeps
    # the rest of the batch in hand from expiring while the handler works on one message.
    ack_wait: float = 15.0
    # The handler's deadline per message (default: two thirds of ack_wait). A handler stuck
    # past it fails like any error (redelivered with backoff), so a hung dependency cannot
    # keep a message "in progress" for ever.
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.deadline < self.ack_wait:
            raise ValueError("a subscription's timeout must be positive and below its ack_wait")

    @property
    def deadline(self) -> float:
        return self.timeout if self.timeout is not None else self.ack_wait * 2 / 3


async def through_outage(
    attempt: Callable[[], Awaitable[None]],
    *,
    held: Sequence[Msg],
    stopping: asyncio.Event,
    label: str,
    metrics: Metrics | None = None,
) -> bool:
    """Run `attempt` until it stops failing for a store being down; returns False when the
    component began stopping first (the messages are then left to come back after ack_wait).

    An outage is not the event's fault: counted as a failed delivery, one longer than the
    redelivery schedule would dead-letter good events. So the messages are held (marked in
    progress, which JetStream does not count as a delivery) and the attempt repeated with
    backoff. Any other error is raised to the caller's retry and dead-letter rules."""
    delay = 0.2
    while True:
        try:
            await attempt()
            return True
        except Exception as exc:
            if not errors.store_down(exc):
                raise
            if metrics is not None:
                metrics.store_unavailable.labels(errors.store_of(exc)).inc()
            log.warning("%s: a store is down (%r); holding %d events", label, exc, len(held))
        for msg in held:
            with contextlib.suppress(Exception):
                await msg.in_progress()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        if stopping.is_set():
            return False
        delay = min(delay * 2, 5.0)


def durable_name(durable: str, event: type[events.Event]) -> str:
    """The JetStream consumer of `durable` (a component, as a rule) for one event type."""
    return f"{durable}-{event.SUBJECT.replace('.', '-')}"


class Bus:
    def __init__(
        self,
        *,
        nc: NATS,
        namespace: str,
        metrics: Metrics,
        max_deliver: int,
        backoff: Sequence[float],
        stream_watch_seconds: float = 15.0,
        stream_warn_ratio: float = 0.8,
        stream_storage_bytes: int = streams.DEFAULT_BUDGET,
        tracing: traces.Tracing | None = None,
    ) -> None:
        self.nc = nc
        self.tracing = tracing
        self.js: JetStreamContext = nc.jetstream()
        self.namespace = namespace
        self.metrics = metrics
        self.max_deliver = max_deliver
        self.backoff = tuple(backoff) or (1.0,)
        self.tasks = supervisor.Supervisor()
        self.stream_watch_seconds = stream_watch_seconds
        self.stream_warn_ratio = stream_warn_ratio
        self.stream_storage_bytes = stream_storage_bytes
        self._stream_usage: dict[str, float] = {}
        self._downstream: Sequence[tuple[str, str]] = ()
        self._stopping = asyncio.Event()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # prometheus' labels() lookup is costly per message: keep the children
        self._published = functools.cache(self.metrics.published.labels)
        self._consumed = functools.cache(self.metrics.consumed.labels)
        self._handling = functools.cache(self.metrics.handling.labels)

    @classmethod
    async def connect(
        cls,
        *,
        url: str,
        name: str,
        namespace: str,
        metrics: Metrics,
        max_deliver: int = 5,
        backoff: Sequence[float] = (0.5, 2.0, 10.0),
        stream_watch_seconds: float = 15.0,
        stream_warn_ratio: float = 0.8,
        stream_storage_bytes: int = streams.DEFAULT_BUDGET,
        tracing: traces.Tracing | None = None,
    ) -> Bus:
        async def disconnected() -> None:
            metrics.nats_disconnects.inc()

        nc = await nats.connect(
            url,
            name=name,
            disconnected_cb=disconnected,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            allow_reconnect=True,
            # replies come to the component's own inboxes, the only ones its user may read
            inbox_prefix=grants.inbox_prefix(name),
        )
        return cls(
            nc=nc,
            namespace=namespace,
            metrics=metrics,
            max_deliver=max_deliver,
            backoff=backoff,
            stream_watch_seconds=stream_watch_seconds,
            stream_warn_ratio=stream_warn_ratio,
            stream_storage_bytes=stream_storage_bytes,
            tracing=tracing,
        )

    def subject(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    async def ensure_streams(self) -> None:
        """Declare every stream with its limits; safe to run from every component at every
        start (an existing stream is updated to the declared limits)."""
        for noun in (*events.STREAMS, events.DEAD_LETTER):
            config = streams.config(
                namespace=self.namespace, noun=noun, budget=self.stream_storage_bytes
            )
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError:
                await self.js.update_stream(config)

    def watch_streams(self, *, downstream: Sequence[tuple[str, str]] = ()) -> None:
        """Keep `rhime_stream_usage_ratio` and the near-limit warnings current, and
        `rhime_downstream_pending` for the `downstream` (stream, durable) consumers."""
        self._downstream = downstream
        self.tasks.start("stream-watch", self._watch_streams)

    async def _watch_streams(self) -> None:
        while True:
            for noun in (*events.STREAMS, events.DEAD_LETTER):
                name = events.stream_name(self.namespace, noun)
                try:
                    info = await self.js.stream_info(name)
                except nats.js.errors.NotFoundError:
                    # lost with NATS' data, or deleted: consumers and publishers need it back
                    log.warning("stream %s is missing; declaring the streams again", name)
                    await self.ensure_streams()
                    continue
                self._stream_usage[name] = streams.usage(info)
                self.metrics.stream_usage.labels(name).set(self._stream_usage[name])
            for stream, durable in self._downstream:
                try:
                    consumer = await self.js.consumer_info(stream, durable)
                except nats.js.errors.NotFoundError:
                    # not started yet, or deleted: nothing to lag behind, no stale value
                    with contextlib.suppress(KeyError):
                        self.metrics.downstream_pending.remove(durable)
                    continue
                pending = consumer.num_pending or 0
                self.metrics.downstream_pending.labels(durable).set(pending)
            await asyncio.sleep(self.stream_watch_seconds)

    def warnings(self) -> list[str]:
        """Streams close to their size limit: the outbox streams then hold new events back
        and `like` drops its oldest."""
        return [
            f"stream {name} is at {ratio:.0%} of its size limit"
            for name, ratio in sorted(self._stream_usage.items())
            if ratio >= self.stream_warn_ratio
        ]

    def problems(self) -> list[str]:
        return self.tasks.problems()

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the bus begins to close: long waits give up and leave events unsettled."""
        return self._stopping

    async def publish(
        self,
        event: events.Event,
        *,
        request_id: str | None = None,
        trace: Mapping[str, str] | None = None,
    ) -> bool:
        """Publish and wait for JetStream's ack. Returns False when JetStream recognised the
        id as a duplicate (already published). `trace` is the context the event was staged
        in (the outbox relay publishes later, outside it); by default the current one."""
        headers = self._headers(event, request_id)
        subject = self.subject(event.SUBJECT)
        data = event.model_dump_json().encode()
        if self.tracing is None:
            ack = await self.js.publish(subject, data, headers=headers)
        else:
            attributes = {"messaging.destination.name": subject, "messaging.message.id": event.id}
            if logs.HEADER in headers:  # the relay's publish has no current request id
                attributes[traces.REQUEST_ID] = headers[logs.HEADER]
            with self.tracing.span(
                f"publish {event.SUBJECT}",
                kind=traces.SpanKind.PRODUCER,
                parent=traces.extract(trace),
                attributes=attributes,
            ):
                traces.inject(headers)  # the consumer's span continues this trace
                ack = await self.js.publish(subject, data, headers=headers)
        self._published(event.SUBJECT).inc()
        return not ack.duplicate

    async def publish_many(self, batch: Sequence[events.Event], *, window: int = 256) -> None:
        """Publish with up to `window` acks outstanding; returns when every ack arrived."""
        semaphore = asyncio.Semaphore(window)

        async def one(event: events.Event) -> None:
            async with semaphore:
                await self.publish(event)

        await asyncio.gather(*(one(e) for e in batch))

    def _headers(self, event: events.Event, request_id: str | None) -> dict[str, str]:
        headers = {"Nats-Msg-Id": event.id}
        rid = request_id or logs.request_id.get()
        if rid:
            headers[logs.HEADER] = rid
        return headers

    def start(
        self, subscription: Subscription[Any] | batches.Batches[Any], *, component: str
    ) -> None:
        name = durable_name(subscription.durable or component, subscription.event)
        if isinstance(subscription, Subscription):
            run = functools.partial(self._consume, subscription, name)
        else:
            run = functools.partial(subscription.consume, self, name)
        self.tasks.start(name, run, reports_up=True)

    async def through_outage(
        self, attempt: Callable[[], Awaitable[None]], *, held: Sequence[Msg], label: str
    ) -> bool:
        return await through_outage(
            attempt, held=held, stopping=self._stopping, label=label, metrics=self.metrics
        )

    async def subscribe(
        self, event: type[events.Event], *, durable: str, ack_wait: float, batch: int
    ) -> Any:
        """A pull subscription on the durable consumer, created or brought to this config."""
        subject = self.subject(event.SUBJECT)
        stream = events.stream_name(self.namespace, events.noun(event.SUBJECT))
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_ack_pending=max(1000, batch * 4),
            filter_subject=subject,
        )
        await self._update_consumer(stream, config)
        return await self.js.pull_subscribe(subject, durable=durable, stream=stream, config=config)

    async def _update_consumer(self, stream: str, config: ConsumerConfig) -> None:
        """nats-py reuses an existing durable as it is: apply a changed config ourselves (the
        server updates a durable in place when these fields change)."""
        assert config.durable_name is not None
        try:
            info = await self.js.consumer_info(stream, config.durable_name)
        except nats.js.errors.NotFoundError:
            return  # pull_subscribe creates it
        fields = ("ack_wait", "max_ack_pending", "filter_subject")
        drift = {
            f: (getattr(info.config, f), getattr(config, f))
            for f in fields
            if getattr(info.config, f) != getattr(config, f)
        }
        if drift:
            log.warning("updating consumer %s: %s", config.durable_name, drift)
            await self.js.add_consumer(stream, config)

    async def _consume(self, sub: Subscription[Any], durable: str) -> None:
        psub = await self.subscribe(
            sub.event, durable=durable, ack_wait=sub.ack_wait, batch=sub.batch
        )
        # Messages of the batch in hand that are not acked yet. A slow handler must not let
        # them reach ack_wait (they would be redelivered while still being worked on), so
        # ack_wait stays short and a heartbeat says "in progress" for them.
        waiting: list[Msg] = []
        beat = asyncio.create_task(self.keep_in_progress(waiting, sub.ack_wait))
        try:
            await self._fetch_loop(sub, durable, psub, waiting)
        finally:
            beat.cancel()

    async def keep_in_progress(self, waiting: list[Msg], ack_wait: float) -> None:
        """Tell JetStream, every third of ack_wait, that the messages in hand are being
        worked on, so none reaches ack_wait and is handed out again meanwhile."""
        while True:
            await asyncio.sleep(ack_wait / 3)
            for msg in list(waiting):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _fetch_loop(
        self, sub: Subscription[Any], durable: str, psub: Any, waiting: list[Msg]
    ) -> None:
        last_lag = 0.0
        while not self._stopping.is_set():
            # Any other fetch error (reconnecting, stream or consumer deleted) goes to the
            # supervisor: it reports the consumer down and subscribes again with backoff.
            try:
                msgs = await psub.fetch(sub.batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                msgs = []
            self.tasks.up(durable)
            if msgs:
                self.begin()
                waiting[:] = msgs
                try:
                    for msg in msgs:
                        try:
                            await self._deliver(sub, durable, msg)
                        except Exception:
                            # ack, nak or the dead letter failed (NATS unreachable?): the
                            # message stays unacked and comes back after ack_wait.
                            log.error("could not settle a message on %s", durable, exc_info=True)
                        waiting.remove(msg)
                finally:
                    waiting.clear()
                    self.end()
            if time.monotonic() - last_lag > 5:
                last_lag = time.monotonic()
                await self.report_lag(psub, durable)

    async def report_lag(self, psub: Any, durable: str) -> None:
        """Set `rhime_consumer_pending` for a durable: the events JetStream has not delivered
        to it yet (best effort: a failed read leaves the last value)."""
        with contextlib.suppress(Exception):
            info = await psub.consumer_info()
            self.metrics.consumer_pending.labels(durable).set(info.num_pending or 0)

    def begin(self) -> None:
        """A batch is in hand: `close` waits (up to its grace) until it is settled."""
        self._inflight += 1
        self._idle.clear()

    def end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    async def _deliver(self, sub: Subscription[Any], durable: str, msg: Msg) -> None:
        subject = sub.event.SUBJECT
        delivered = msg.metadata.num_delivered or 1
        token = logs.request_id.set((msg.headers or {}).get(logs.HEADER, ""))
        try:
            event = await self.admit(msg, sub.event, durable)
            if event is None:
                return
            started = time.perf_counter()

            async def attempt() -> None:
                async with asyncio.timeout(sub.deadline):
                    await sub.handler(event)

            try:
                with traces.OFF if self.tracing is None else self._span(sub, durable, msg):
                    if not await self.through_outage(attempt, held=[msg], label=durable):
                        return
            except Exception as exc:
                log.warning(
                    "handler %s failed on delivery %d of %s",
                    durable,
                    delivered,
                    event.id,
                    exc_info=True,
                )
                await self.retry_or_dead_letter(msg, subject, durable, exc)
                return
            self._handling(subject).observe(time.perf_counter() - started)
            await msg.ack()
            self._consumed(subject, durable, "ok").inc()
        finally:
            logs.request_id.reset(token)

    async def admit(self, msg: Msg, event: type[E], durable: str) -> E | None:
        """The message's event, or None when it was dead-lettered instead (a payload that is
        not the event, or delivered more often than allowed)."""
        subject = event.SUBJECT
        delivered = msg.metadata.num_delivered or 1
        if delivered > 1:
            self.metrics.redelivered.labels(subject, durable).inc()
        try:
            found = event.model_validate_json(msg.data)
        except ValidationError as exc:
            await self.dead_letter(msg, subject, durable, f"invalid payload: {exc}")
            return None
        if delivered > self.max_deliver:
            await self.dead_letter(msg, subject, durable, "delivered too many times")
            return None
        return found

    async def retry_or_dead_letter(
        self, msg: Msg, subject: str, durable: str, exc: BaseException
    ) -> None:
        """A handler failed on this message: redeliver it after the backoff for its delivery,
        or dead-letter it on its last allowed one."""
        delivered = msg.metadata.num_delivered or 1
        if delivered >= self.max_deliver:
            await self.dead_letter(msg, subject, durable, repr(exc))
        else:
            self._consumed(subject, durable, "retry").inc()
            await msg.nak(delay=self.backoff[min(delivered, len(self.backoff)) - 1])

    def _span(
        self, sub: Subscription[Any], durable: str, msg: Msg
    ) -> contextlib.AbstractContextManager[traces.Span]:
        """The handler's span, a child of the publisher's (its context rode in the headers)."""
        assert self.tracing is not None
        return self.tracing.span(
            f"process {sub.event.SUBJECT}",
            kind=traces.SpanKind.CONSUMER,
            parent=traces.extract(msg.headers),
            attributes={
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": durable,
                "messaging.message.id": (msg.headers or {}).get("Nats-Msg-Id", ""),
            },
        )

    async def dead_letter(self, msg: Msg, subject: str, durable: str, reason: str) -> None:
        body = {
            "subject": subject,
            "durable": durable,
            "reason": reason[:2000],
            "data": msg.data.decode(errors="replace"),
            "deliveries": msg.metadata.num_delivered,
        }
        await self.js.publish(
            self.subject(f"{events.DEAD_LETTER}.{durable}"),
            orjson.dumps(body),
            headers={"Nats-Msg-Id": f"dlq:{durable}:{msg.metadata.sequence.stream}"},
        )
        await msg.term()
        self.metrics.dead_lettered.labels(subject, durable).inc()
        self._consumed(subject, durable, "dead").inc()
        log.error("dead-lettered %s for %s: %s", subject, durable, reason[:200])

    async def close(self, *, grace: float) -> None:
        """Stop fetching, let in-flight batches finish (up to `grace`), then drain."""
        self._stopping.set()
        self.tasks.halt()  # consumers now return when their batch is done
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        # Idle now: whatever a task is doing is a fetch, safe to cancel (a batch that lands
        # in between stays unacked and is redelivered).
        await self.tasks.stop()
        # Our own draining is done: flush the acks and close (nats' drain() would wait on the
        # pull subscriptions' inboxes for its full timeout).
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            await self.nc.close()
