"""Rebuilding the like-batch-updater's Redis state after Redis lost it.

The batch updater counts *transitions* against its own per-(item, person) state in Redis. If
Redis comes back empty (a restart without its data), that state is gone, and an event
JetStream hands over again (its ack was lost in the same crash) would be counted a second
time. A marker key lives beside the state: the transition script counts nothing while it is
missing, so events wait (held in progress, never failed), and the flusher rebuilds.

Redis may also come back *behind* (from a snapshot, or an append-only log a second short):
the marker is there but some writes are not. Two counters show it: the flush generation,
noted in MongoDB before each flush writes counts, is ahead of Redis's; or the highest stream
sequence Redis has recorded is below what this worker has acked (the transition script
compares, and drops the marker). Either way:

1. Wait until the like-updater has persisted every event this worker was ever handed (its
   consumer's ack floor reaches our consumer's last delivered sequence). Then the persisted
   state holds everything a lost delta might have counted.
2. Per item, in item order, from one read of its persisted rows: write each person's
   (seq, liked) into the state hash and set the item's count to the number who like it, so
   the two agree. Items counted but liked by nobody any more go to 0.
3. Drop the pending deltas and the dirty set, and set the marker.

Counting then resumes against the rebuilt state: an event the like-updater had persisted is
a no-op (its seq is not higher), a newer one is a real transition. One replica rebuilds at a
time (a Redis lock). A new deployment, or one upgraded from before the marker, passes
through here once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import nats.js.errors
from pymongo import UpdateOne

from rhime import events
from rhime.kit import bus as kit_bus
from rhime.likes import counts, state

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger("rhime.likes.resync")
CHUNK = 500  # items per Redis pipeline and Mongo bulk
LOCK_SECONDS = 60  # renewed while the rebuild runs; a dead rebuilder's lock lapses
UPDATER = "like-updater"  # whose persisted state the rebuild reads

# an item's (state, pending, flushing) keys, as the batch updater names them
ItemKeys = Callable[["Kit", str], tuple[str, str, str]]


PROGRESS = "progress"  # the batch updater's flush generation, where Redis cannot lose it


def marker_key(kit: Kit) -> str:
    return kit.key("likes", "counted")


def flushes_key(kit: Kit) -> str:
    """Flushes begun (each takes the next number before it writes counts)."""
    return kit.key("likes", "flushes")


def recorded_key(kit: Kit) -> str:
    """The highest stream sequence whose events are recorded (written before their ack)."""
    return kit.key("likes", "recorded")


def lock_key(kit: Kit) -> str:
    return kit.key("likes", "resyncing")


async def flushed(kit: Kit, *, generation: int) -> None:
    """Note a flush's generation in Mongo before its counts are written."""
    await kit.database[PROGRESS].update_one(
        {"_id": "flushes"}, {"$max": {"generation": generation}}, upsert=True
    )
    counts.mongo_writes(kit).inc(1)


async def lost(kit: Kit) -> str | None:
    """Why Redis no longer holds all the counting state, or None. A partial loss (Redis back
    from a snapshot or a log a second behind) shows here as a flush generation behind
    MongoDB's; the transition script sees the other kind, fewer events recorded than acked."""
    marker, flushes = await kit.redis.mget([marker_key(kit), flushes_key(kit)])
    if marker is None:
        return "no marker, or fewer events recorded than acked"
    doc = await kit.database[PROGRESS].find_one({"_id": "flushes"})
    if doc is not None and int(doc["generation"]) > int(flushes or 0):
        return f"flush {int(flushes or 0)} in Redis, {int(doc['generation'])} in MongoDB"
    return None


async def acked(kit: Kit) -> int:
    """The stream sequence JetStream has every event acked up to by this worker's consumer."""
    bus = kit.require_bus()
    return await _sequence(bus.js, _stream(bus), _ours(kit), "ack_floor") or 0


async def run(kit: Kit, *, keys: ItemKeys, dirty: str, state_ttl: int, poll: float = 1.0) -> bool:
    """Rebuild if no other replica is; returns whether this one did."""
    token = uuid.uuid4().hex
    if not await kit.redis.set(lock_key(kit), token, nx=True, ex=LOCK_SECONDS):
        return False
    try:
        handed = await _caught_up(kit, poll=poll)
        rebuilt = await rebuild(kit, keys=keys, dirty=dirty, state_ttl=state_ttl, lock=token)
        doc = await kit.database[PROGRESS].find_one({"_id": "flushes"})
        pipe = kit.redis.pipeline(transaction=False)
        pipe.set(flushes_key(kit), int(doc["generation"]) if doc else 0)
        pipe.set(recorded_key(kit), handed)
        pipe.set(marker_key(kit), datetime.datetime.now(datetime.UTC).isoformat())
        await pipe.execute()
        log.warning("like counting state rebuilt from the persisted likes: %d items", rebuilt)
        return True
    finally:
        if await kit.redis.get(lock_key(kit)) == token:
            await kit.redis.delete(lock_key(kit))


def _stream(bus: Any) -> str:
    return events.stream_name(bus.namespace, events.noun(events.LikeToggled.SUBJECT))


def _ours(kit: Kit) -> str:
    return kit_bus.durable_name(kit.settings.component or "rhime", events.LikeToggled)


async def _caught_up(kit: Kit, *, poll: float) -> int:
    """Step 1: until the like-updater's ack floor reaches what we were last handed; returns
    that sequence."""
    bus = kit.require_bus()
    stream = _stream(bus)
    theirs = kit_bus.durable_name(UPDATER, events.LikeToggled)
    waited = 0.0
    while True:
        # ours not there yet: it was handed nothing
        handed = await _sequence(bus.js, stream, _ours(kit), "delivered") or 0
        persisted = await _sequence(bus.js, stream, theirs, "ack_floor")
        if handed == 0 or (persisted is not None and persisted >= handed):
            return handed
        if waited % 30 < poll:
            log.warning(
                "like counting paused: waiting for the like-updater to persist up to event %d "
                "(at %s)",
                handed,
                persisted,
            )
        await kit.redis.expire(lock_key(kit), LOCK_SECONDS)
        await asyncio.sleep(poll)
        waited += poll


async def _sequence(js: Any, stream: str, durable: str, which: str) -> int | None:
    """The stream sequence a consumer was last delivered / has acked all up to; None when
    the consumer does not exist."""
    try:
        info = await js.consumer_info(stream, durable)
    except nats.js.errors.NotFoundError:
        return None
    return int(getattr(info, which).stream_seq or 0)


async def rebuild(
    kit: Kit, *, keys: ItemKeys, dirty: str, state_ttl: int, lock: str | None = None
) -> int:
    """Steps 2 and 3 (all but the marker); returns the number of items written."""
    written = 0
    chunk: list[tuple[str, dict[str, str], int]] = []
    async for item, people in _merged(kit.database):
        chunk.append((item, people, sum(1 for v in people.values() if v.endswith(":1"))))
        if len(chunk) == CHUNK:
            written += await _write(kit, chunk, state_ttl=state_ttl, keys=keys)
            chunk = []
            if lock is not None:
                await kit.redis.expire(lock_key(kit), LOCK_SECONDS)
    written += await _write(kit, chunk, state_ttl=state_ttl, keys=keys)
    await kit.redis.delete(dirty)
    return written


async def _write(
    kit: Kit, chunk: list[tuple[str, dict[str, str], int]], *, state_ttl: int, keys: ItemKeys
) -> int:
    if not chunk:
        return 0
    pipe = kit.redis.pipeline(transaction=False)
    for item, people, _ in chunk:
        state_key, pending_key, flushing_key = keys(kit, item)
        pipe.delete(state_key, pending_key, flushing_key)
        if people:
            pipe.hset(state_key, mapping=dict[Any, Any](people))
            pipe.expire(state_key, state_ttl)
    await pipe.execute()
    now = datetime.datetime.now(datetime.UTC)
    writes = [
        UpdateOne({"_id": item}, {"$set": {"count": n, "updated_at": now}}, upsert=True)
        for item, _, n in chunk
    ]
    await kit.database[counts.COLLECTION].bulk_write(writes, ordered=False)
    counts.mongo_writes(kit).inc(1)
    return len(chunk)


async def _merged(database: Any) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Every item that has persisted like rows or a stored count, in item order, with its
    people's `seq:liked` (empty for a count nobody's likes back any more)."""
    rows = _people(database[state.COLLECTION])
    stored = _counted(database[counts.COLLECTION])
    row = await anext(rows, None)
    count = await anext(stored, None)
    while row is not None or count is not None:
        if count is None or (row is not None and row[0] <= count):
            assert row is not None
            if count == row[0]:
                count = await anext(stored, None)
            yield row
            row = await anext(rows, None)
        else:
            yield count, {}
            count = await anext(stored, None)


async def _people(coll: Any) -> AsyncIterator[tuple[str, dict[str, str]]]:
    current: str | None = None
    people: dict[str, str] = {}
    cursor = coll.find({}, {"item_id": 1, "user_id": 1, "seq": 1, "liked": 1}).sort(
        [("item_id", 1), ("liked", 1)]
    )
    async for doc in cursor:
        if doc["item_id"] != current:
            if current is not None:
                yield current, people
            current, people = doc["item_id"], {}
        people[doc["user_id"]] = f"{int(doc['seq'])}:{1 if doc.get('liked') else 0}"
    if current is not None:
        yield current, people


async def _counted(coll: Any) -> AsyncIterator[str]:
    async for doc in coll.find({}, {"_id": 1}).sort("_id", 1):
        yield str(doc["_id"])
