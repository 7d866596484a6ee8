"""A durable pull consumer that hands its handler a whole batch and acks only after the
handler returns, so a worker can coalesce many events into one bulk write and still lose
nothing when it dies before that write committed (the batch is simply redelivered).

The kit's `bus.Subscription` acks message by message; the like workers need the batch.
Naming follows the kit (`{component}-{subject with dashes}`), so replicas share the consumer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import nats.errors
import orjson
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from rhime import events

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
    ack_wait: float = 60.0


def durable_name(component: str, event: type[events.Event]) -> str:
    return f"{component}-{event.SUBJECT.replace('.', '-')}"


async def run(kit: Kit, consumer: BatchConsumer[Any]) -> None:
    """Consume forever (a kit task): fetch, hand over the valid events, ack them."""
    bus = kit.require_bus()
    subject = bus.subject(consumer.event.SUBJECT)
    durable = durable_name(kit.settings.component or "rhime", consumer.event)
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=consumer.ack_wait,
        max_ack_pending=max(1000, consumer.batch * 4),
        filter_subject=subject,
    )
    stream = events.stream_name(kit.settings.namespace, events.noun(consumer.event.SUBJECT))
    psub = await bus.js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    while True:
        try:
            msgs = await psub.fetch(consumer.batch, timeout=consumer.window)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
            return
        except Exception:  # reconnecting, stream being recreated...
            log.warning("fetch failed on %s; retrying", durable, exc_info=True)
            await asyncio.sleep(0.5)
            continue
        await _handle(kit, consumer, durable, msgs)


async def _handle(kit: Kit, consumer: BatchConsumer[Any], durable: str, msgs: list[Msg]) -> None:
    good: list[tuple[Msg, events.Event]] = []
    for msg in msgs:
        try:
            event = consumer.event.model_validate_json(msg.data)
        except ValidationError as exc:
            await _dead_letter(kit, msg, durable, f"invalid payload: {exc}")
            continue
        if (msg.metadata.num_delivered or 1) > kit.settings.max_deliver:
            await _dead_letter(kit, msg, durable, "delivered too many times")
            continue
        good.append((msg, event))
    if not good:
        return
    try:
        await consumer.handler([event for _, event in good])
    except Exception:
        log.warning(
            "batch of %d failed on %s; retrying one by one", len(good), durable, exc_info=True
        )
        for msg, event in good:
            await _one(kit, consumer, durable, msg, event)
        return
    for msg, _ in good:
        await msg.ack()
    kit.metrics.consumed.labels(consumer.event.SUBJECT, durable, "ok").inc(len(good))


async def _one(
    kit: Kit, consumer: BatchConsumer[Any], durable: str, msg: Msg, event: events.Event
) -> None:
    """A failed batch is retried event by event, so one poison message cannot hold the rest."""
    try:
        await consumer.handler([event])
    except Exception as exc:
        delivered = msg.metadata.num_delivered or 1
        if delivered >= kit.settings.max_deliver:
            await _dead_letter(kit, msg, durable, repr(exc))
        else:
            backoff = kit.settings.redelivery_backoff or (1.0,)
            await msg.nak(delay=backoff[min(delivered, len(backoff)) - 1])
        return
    await msg.ack()


async def _dead_letter(kit: Kit, msg: Msg, durable: str, reason: str) -> None:
    """Same subject and body as the kit's dead letters."""
    bus = kit.require_bus()
    body = {
        "subject": msg.subject.removeprefix(f"{kit.settings.namespace}."),
        "durable": durable,
        "reason": reason[:2000],
        "data": msg.data.decode(errors="replace"),
        "deliveries": msg.metadata.num_delivered,
    }
    await bus.js.publish(
        bus.subject(f"{events.DEAD_LETTER}.{durable}"),
        orjson.dumps(body),
        headers={"Nats-Msg-Id": f"dlq:{durable}:{msg.metadata.sequence.stream}"},
    )
    await msg.term()
    log.error("dead-lettered a message for %s: %s", durable, reason[:200])
