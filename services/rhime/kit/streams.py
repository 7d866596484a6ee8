"""The JetStream streams and their limits. Every stream is bounded in age and size so the
event log cannot fill the NATS volume. JetStream reserves each stream's max_bytes against its
store limit (by default 75 % of the volume's free space) and refuses a stream that does not
fit, so the caps share a budget (`RHIME_STREAM_STORAGE_BYTES`, by default 512 MiB: half the
managed default volume of 1 Gi). Why each choice: docs/kit.md."""

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
    share: float  # of the storage budget
    discard: DiscardPolicy

    def max_bytes(self, budget: int) -> int:
        return int(budget * self.share)


# Streams fed through the outbox refuse new events when full (DiscardPolicy.NEW): the refused
# event stays staged in its document and the relay publishes it once old events age out, so
# nothing is lost and nothing unconsumed is dropped. `like` is published directly (JetStream's
# ack is the like's commit point): when full it drops its oldest events, long consumed by then,
# rather than refusing every like. Dead letters are kept longest, oldest dropped first.
LIMITS: Mapping[str, Limits] = {
    "user": Limits(max_age=14 * DAY, share=3 / 16, discard=DiscardPolicy.NEW),
    "post": Limits(max_age=14 * DAY, share=3 / 16, discard=DiscardPolicy.NEW),
    "comment": Limits(max_age=14 * DAY, share=3 / 16, discard=DiscardPolicy.NEW),
    "like": Limits(max_age=7 * DAY, share=6 / 16, discard=DiscardPolicy.OLD),
    events.DEAD_LETTER: Limits(max_age=30 * DAY, share=1 / 16, discard=DiscardPolicy.OLD),
}


DEFAULT_BUDGET = 512 * MIB


def config(*, namespace: str, noun: str, budget: int) -> StreamConfig:
    limits = LIMITS[noun]
    return StreamConfig(
        name=events.stream_name(namespace, noun),
        subjects=[f"{namespace}.{noun}.>"],
        duplicate_window=DUPLICATE_WINDOW,
        max_age=limits.max_age,
        max_bytes=limits.max_bytes(budget),
        discard=limits.discard,
    )


def usage(info: StreamInfo) -> float:
    """How full the stream is, 0..1, by bytes (the limit that can be reached before max_age)."""
    max_bytes = info.config.max_bytes or 0
    if max_bytes <= 0:
        return 0.0
    return min(1.0, info.state.bytes / max_bytes)
