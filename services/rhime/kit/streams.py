"""The JetStream streams and their limits. Every stream is bounded in age and size so the
event log cannot fill the NATS volume (the managed default is 1 Gi; the caps add up to
704 MiB, leaving room for JetStream's own files). Why each choice: docs/kit.md."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from nats.js.api import DiscardPolicy, StreamConfig, StreamInfo

from rhime import events

DAY = 86_400.0
MIB = 1 << 20
# JetStream drops a republished id seen within this window; must stay below every max_age.
DUPLICATE_WINDOW = 600.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    max_age: float  # seconds
    max_bytes: int
    discard: DiscardPolicy


# Streams fed through the outbox refuse new events when full (DiscardPolicy.NEW): the refused
# event stays staged in its document and the relay publishes it once old events age out, so
# nothing is lost and nothing unconsumed is dropped. `like` is published directly (JetStream's
# ack is the like's commit point): when full it drops its oldest events, long consumed by then,
# rather than refusing every like. Dead letters are kept longest, oldest dropped first.
LIMITS: Mapping[str, Limits] = {
    "user": Limits(max_age=14 * DAY, max_bytes=128 * MIB, discard=DiscardPolicy.NEW),
    "post": Limits(max_age=14 * DAY, max_bytes=128 * MIB, discard=DiscardPolicy.NEW),
    "comment": Limits(max_age=14 * DAY, max_bytes=128 * MIB, discard=DiscardPolicy.NEW),
    "like": Limits(max_age=7 * DAY, max_bytes=256 * MIB, discard=DiscardPolicy.OLD),
    events.DEAD_LETTER: Limits(max_age=30 * DAY, max_bytes=64 * MIB, discard=DiscardPolicy.OLD),
}


def config(*, namespace: str, noun: str, limits: Limits) -> StreamConfig:
    return StreamConfig(
        name=events.stream_name(namespace, noun),
        subjects=[f"{namespace}.{noun}.>"],
        duplicate_window=DUPLICATE_WINDOW,
        max_age=limits.max_age,
        max_bytes=limits.max_bytes,
        discard=limits.discard,
    )


def usage(info: StreamInfo) -> float:
    """How full the stream is, 0..1, by bytes (the limit that can be reached before max_age)."""
    max_bytes = info.config.max_bytes or 0
    if max_bytes <= 0:
        return 0.0
    return min(1.0, info.state.bytes / max_bytes)
