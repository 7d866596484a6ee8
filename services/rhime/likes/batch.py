"""like-batch-updater: like counts, coalesced and written in bulk, exact under duplicate,
reordered and redelivered events and under a crash of this worker at any moment.

Counts must follow *state transitions*, not raw events (a duplicate like is not a second
like). Three steps, each safe to repeat:

1. **Transition** (per event, in Redis, one Lua script on keys of one item): the worker's own
   state per (item, person) — `{ns}:likes:{<item>}:state` hash, field = person, value =
   `seq:liked` — is advanced only by a higher seq; when `liked` really changes, the script adds
   ±1 to the item's pending delta `{ns}:likes:{<item>}:pending` in the same atomic step. The
   item is then added to the dirty set. The batch is acked after this, so a crash before it
   redelivers the events, and a redelivered event finds its seq already applied: no double.
2. **Snapshot** (per dirty item, Lua): the pending delta moves into `…:flushing` together with
   a fresh epoch id, unless a snapshot is already there (a crashed flush), which is reused.
3. **Apply** (Mongo, one unordered bulk per flush): `$inc` each item's count by its snapshot
   delta, guarded by the epoch id kept in the count document (`idempotency`-style), so
   re-applying a snapshot after a crash changes nothing. Then the snapshot is deleted (only if
   its epoch is still the one applied) and the item leaves the dirty set unless more arrived.

So every Mongo write carries the net change of many events on one item: a storm of N events on
k items costs about k writes per flush interval. Redis holds the transition state and pending
deltas (persisted with the rest of Redis); if Redis itself loses data, counting pauses and
the state is rebuilt from the like-updater's persisted state (`resync`).
The state hash of an item nobody touched for `state_ttl_days` expires (Redis must not grow
with every like ever made): longer than the like stream keeps events, so a redelivery always
finds its seq; a later unlike of such an item is counted by the reconcile job.
Keys carry the item id in a hash tag, so all keys a script touches live in one cluster slot.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import Field

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import batches, errors
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import counts, guarded, resync

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger("rhime.likes.batch")
APPLIED_KEEP = 50  # epochs remembered per count document; a retry comes within one or two

# ARGV[5] = '1': the person deleted their account; their field goes (it names them) after
# the unlike is counted, and a repeat finds nothing to count.
# KEYS[3], the marker, is missing when Redis lost the state: count nothing until it is
# rebuilt. KEYS[4] below ARGV[6] (what this worker has acked) means Redis came back without
# writes it had made: the marker goes.
_TRANSITION = """
if redis.call('EXISTS', KEYS[3]) == 0 then return 'lost' end
if tonumber(redis.call('GET', KEYS[4]) or '0') < tonumber(ARGV[6]) then
  redis.call('DEL', KEYS[3])
  return 'lost'
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local seq = tonumber(ARGV[2])
local was = '0'
if cur then
  local sep = string.find(cur, ':', 1, true)
  if tonumber(string.sub(cur, 1, sep - 1)) >= seq then return 0 end
  was = string.sub(cur, sep + 1)
end
if ARGV[5] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
if was == ARGV[3] then return 0 end
local delta = (ARGV[3] == '1') and 1 or -1
redis.call('INCRBY', KEYS[2], delta)
return delta
"""

_RAISE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

_SNAPSHOT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('HMGET', KEYS[2], 'epoch', 'delta')
end
local delta = redis.call('GET', KEYS[1])
if not delta then return false end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'delta', delta)
return {ARGV[1], delta}
"""

_DONE = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class Settings(KitSettings):
    batch: int = Field(
        default=1000, description="most like events fetched and recorded in Redis at once"
    )
    window_seconds: float = Field(
        default=0.2, description="seconds a fetch waits to fill the batch"
    )
    flush_seconds: float = Field(
        default=0.25,
        description="seconds between count flushes to MongoDB; how long changes may wait to "
        "be coalesced",
    )
    flush_items: int = Field(default=500, description="items per flush bulk write")
    state_ttl_days: float = Field(
        default=30.0,
        gt=7,
        description="days an item's like state stays in Redis after its last change (above "
        "the like stream's 7-day max_age)",
    )


def item_keys(kit: Kit, item_id: str) -> tuple[str, str, str]:
    tag = "{" + item_id + "}"
    return (
        kit.key("likes", tag, "state"),
        kit.key("likes", tag, "pending"),
        kit.key("likes", tag, "flushing"),
    )


def dirty_key(kit: Kit) -> str:
    return kit.key("likes", "dirty")


async def record(
    kit: Kit, batch: Sequence[events.LikeToggled], *, state_ttl: int, acked: int = 0
) -> None:
    """Step 1 for a batch of events, in one pipeline round trip. Raises `errors.Recovering`
    (the events are held, not failed) while the state is being rebuilt after a loss."""
    marker, recorded = resync.marker_key(kit), resync.recorded_key(kit)
    pipe = kit.redis.pipeline(transaction=False)
    for e in batch:
        state_key, pending_key, _ = item_keys(kit, e.item_id)
        liked = "1" if e.liked else "0"
        forget = "1" if e.forget else "0"
        pipe.eval(
            _TRANSITION,
            4,
            state_key,
            pending_key,
            marker,
            recorded,
            e.user_id,
            str(e.seq),
            liked,
            state_ttl,
            forget,
            acked,
        )
    items = sorted({e.item_id for e in batch})
    if items:
        pipe.sadd(dirty_key(kit), *items)
    if last := batches.last_sequence.get():
        pipe.eval(_RAISE, 1, recorded, last)
    results = await pipe.execute()
    # all or none: Redis cannot lose data in the middle of one connection's pipeline
    if any(r in (b"lost", "lost") for r in results):
        raise errors.Recovering("the like counting state is being rebuilt")


async def flush(kit: Kit, *, limit: int = 500, crash_before_done: bool = False) -> int:
    """Steps 2 and 3 for up to `limit` dirty items; returns how many items it looked at.
    `crash_before_done` stops after the Mongo write, as a crash there would (for tests)."""
    members: Any = await kit.redis.srandmember(dirty_key(kit), limit)
    items = [str(m) for m in members or []]
    if not items:
        return 0
    pipe = kit.redis.pipeline(transaction=False)
    epoch = uuid.uuid4().hex
    pipe.incr(resync.flushes_key(kit))
    for item in items:
        _, pending_key, flushing_key = item_keys(kit, item)
        pipe.eval(_SNAPSHOT, 2, pending_key, flushing_key, f"{epoch}:{item}")
    generation, *snapshots = await pipe.execute()
    taken = {
        item: (str(snap[0]), int(snap[1]))
        for item, snap in zip(items, snapshots, strict=True)
        if snap and snap[0] is not None
    }
    if taken:
        # before the counts: a Redis that forgets this snapshot is then seen to be behind
        await resync.flushed(kit, generation=int(generation))
    await apply(kit, taken)
    if crash_before_done:
        return len(items)
    pipe = kit.redis.pipeline(transaction=False)
    for item, (item_epoch, _) in taken.items():
        pipe.eval(_DONE, 1, item_keys(kit, item)[2], item_epoch)
    pipe.srem(dirty_key(kit), *items)
    for item in items:
        _, pending_key, flushing_key = item_keys(kit, item)
        pipe.exists(pending_key, flushing_key)
    results = await pipe.execute()
    # An event recorded after the snapshot left a pending delta: keep the item dirty.
    again = [item for item, n in zip(items, results[-len(items) :], strict=True) if n]
    if again:
        await kit.redis.sadd(dirty_key(kit), *again)
    return len(items)


async def rebuild_if_lost(kit: Kit, *, state_ttl: int) -> bool:
    """Rebuild the counting state when Redis lost some of it (see `resync`); True when it
    was lost."""
    reason = await resync.lost(kit)
    if reason is None:
        return False
    log.warning("like counting state lost (%s): rebuilding it", reason)
    await kit.redis.delete(resync.marker_key(kit))
    await resync.run(kit, keys=item_keys, dirty=dirty_key(kit), state_ttl=state_ttl)
    return True


async def apply(kit: Kit, taken: dict[str, tuple[str, int]]) -> int:
    """Step 3: epoch-guarded `$inc`s in bulk; returns the write operations sent."""
    now = datetime.datetime.now(datetime.UTC)
    writes = [
        guarded.Write(
            doc_id=item,
            guard={"_applied": {"$ne": item_epoch}},
            update={
                "$inc": {"count": delta},
                "$set": {"updated_at": now},
                "$push": {"_applied": {"$each": [item_epoch], "$slice": -APPLIED_KEEP}},
            },
            new={"count": delta, "updated_at": now, "_applied": [item_epoch]},
        )
        for item, (item_epoch, delta) in taken.items()
        if delta != 0
    ]
    sent = await guarded.apply(kit.database[counts.COLLECTION], writes)
    counts.mongo_writes(kit).inc(sent)
    return sent


def create(settings: Settings) -> FastAPI:
    state_ttl = int(settings.state_ttl_days * 86_400)

    def subscriptions(kit: kit_app.Kit) -> list[batches.Batches[events.LikeToggled]]:
        # the highest stream sequence acked: what JetStream has at the start, then ours
        acked: int | None = None

        def note(sequence: int) -> None:
            nonlocal acked
            acked = max(acked or 0, sequence)

        async def handle(batch: Sequence[events.LikeToggled]) -> None:
            nonlocal acked
            if acked is None:
                acked = await resync.acked(kit)
            await record(kit, batch, state_ttl=state_ttl, acked=acked)

        return [
            batches.Batches(
                event=events.LikeToggled,
                handler=handle,
                batch=settings.batch,
                window=settings.window_seconds,
                acked=note,
            )
        ]

    async def flusher(kit: kit_app.Kit) -> None:
        while True:
            await asyncio.sleep(settings.flush_seconds)
            try:
                if await rebuild_if_lost(kit, state_ttl=state_ttl):
                    continue
                while await flush(kit, limit=settings.flush_items) == settings.flush_items:
                    pass  # more items are dirty than one bulk takes
            except Exception:
                log.warning("count flush failed; retrying", exc_info=True)

    return kit_app.create_app(
        settings,
        title="like-batch-updater",
        database="likes",
        indexes=counts.INDEXES,
        resources=[counts.WRITES],
        subscriptions=subscriptions,
        tasks=[flusher],
    )
