"""A crash between a database write and its publish must not lose the event.

FerretDB has no multi-document transactions, so events ride inside the document they describe:
the write stores them in its `_outbox` field in the same single-document operation; then they
are published and pulled. A relay republishes whatever a crash left behind (JetStream drops
duplicates by message id; consumers are idempotent anyway). A document marked `_purge` is
removed once its outbox is empty: that is how deletions publish reliably.

Each staged event is handled on its own: one that cannot be turned back into an event (an
unknown subject, a payload an event schema no longer accepts) is moved to the document's
`_outbox_dead` field with the reason, counted in `rhime_outbox_dead_lettered` and logged, and
the relay goes on with the rest; one that fails to publish stays staged for the next pass.
Each pass reports what it leaves staged (`rhime_outbox_staged_events`) and how old the
oldest of it is (`rhime_outbox_oldest_staged_seconds`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rhime import events
from rhime.kit import logs, traces

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger("rhime.outbox")
FIELD = "_outbox"
PURGE = "_purge"
DEAD = "_outbox_dead"
_LONG_AGO = datetime.datetime.min.replace(tzinfo=datetime.UTC)
# A range over the indexed `_outbox.id` (a multikey index) finds pending documents without
# scanning the collection.
PENDING = {f"{FIELD}.id": {"$gt": ""}}
REQUEST_ID = "request_id"
TRACE = "trace"


def staged(*batch: events.Event) -> list[dict[str, Any]]:
    """The value to store in the document's `_outbox` field with the write. The request id
    and trace context are kept with it, so that a publish by the relay, later and outside
    the request, still carries them."""
    context: dict[str, Any] = {}
    rid = logs.request_id.get()
    if rid:
        context[REQUEST_ID] = rid
    trace = traces.current()
    if trace:
        context[TRACE] = trace
    return [
        {"id": e.id, "subject": e.SUBJECT, "data": e.model_dump(mode="json"), **context}
        for e in batch
    ]


def push(*batch: events.Event) -> dict[str, Any]:
    """An update operator adding events to an existing document's outbox."""
    return {"$push": {FIELD: {"$each": staged(*batch)}}}


async def flush(kit: Kit, *, collection: str, doc_id: Any) -> None:
    """Publish the document's staged events, then remove them (and the document if purged)."""
    coll = kit.database[collection]
    doc = await coll.find_one({"_id": doc_id}, {FIELD: 1, PURGE: 1})
    if doc is None:
        return
    await _publish(kit, coll, doc)


async def try_flush(kit: Kit, *, collection: str, doc_id: Any) -> None:
    """`flush` for a request whose write has committed: a publish failure (NATS restarting)
    must not turn that success into an error the client retries into a duplicate. The event
    stays staged and the relay publishes it."""
    try:
        await flush(kit, collection=collection, doc_id=doc_id)
    except Exception:
        log.warning("event of %s/%s left to the outbox relay", collection, doc_id, exc_info=True)


async def _publish(kit: Kit, coll: Any, doc: dict[str, Any]) -> None:
    for entry in doc.get(FIELD) or []:
        try:
            event = events.BY_SUBJECT[entry["subject"]].model_validate(entry["data"])
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError too
            await _set_aside(kit, coll, doc_id=doc["_id"], entry=entry, reason=repr(exc))
            continue
        await kit.require_bus().publish(
            event, request_id=entry.get(REQUEST_ID), trace=entry.get(TRACE)
        )
        await coll.update_one({"_id": doc["_id"]}, {"$pull": {FIELD: entry}})
    if doc.get(PURGE):
        # a document holding a dead entry stays, so the record of it is not purged with it
        await coll.delete_one(
            {"_id": doc["_id"], PURGE: True, FIELD: {"$size": 0}, DEAD: {"$exists": False}}
        )


async def _set_aside(kit: Kit, coll: Any, *, doc_id: Any, entry: Any, reason: str) -> None:
    """Move a staged entry that can never be published out of the outbox, keeping it."""
    dead = {"entry": entry, "reason": reason[:2000], "at": datetime.datetime.now(datetime.UTC)}
    await coll.update_one({"_id": doc_id}, {"$pull": {FIELD: entry}, "$push": {DEAD: dead}})
    kit.metrics.outbox_dead.labels(coll.name).inc()
    log.error("staged event in %s/%s set aside: %s", coll.name, doc_id, reason[:200])


def _staged_at(entry: Any) -> datetime.datetime:
    """When the entry was staged; an entry without a readable time counts as long ago, so
    the relay looks at it (and sets it aside if it is broken)."""
    try:
        return datetime.datetime.fromisoformat(entry["data"]["occurred_at"])
    except (KeyError, TypeError, ValueError):
        return _LONG_AGO


async def relay(kit: Kit, *, collections: Sequence[str], grace_seconds: float = 5.0) -> None:
    """Forever: publish events left staged for longer than `grace_seconds` (the request that
    staged them normally publishes them itself within milliseconds)."""
    while True:
        for name in collections:
            try:
                await relay_once(kit, collection=name, grace_seconds=grace_seconds)
            except Exception:
                log.warning("outbox relay failed for %s", name, exc_info=True)
        await asyncio.sleep(kit.settings.outbox_relay_seconds)


async def relay_once(kit: Kit, *, collection: str, grace_seconds: float) -> int:
    coll = kit.database[collection]
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=grace_seconds)
    published = 0
    left: list[datetime.datetime] = []  # when each event this pass leaves staged was staged
    async for doc in coll.find(PENDING, {FIELD: 1, PURGE: 1}).limit(500):
        times = [_staged_at(e) for e in doc[FIELD]]
        if min(times) > cutoff:
            left += times
            continue
        # one document's failure must not hold back the documents after it
        try:
            await _publish(kit, coll, doc)
        except Exception:
            log.warning(
                "relaying %s/%s failed; retrying later", collection, doc["_id"], exc_info=True
            )
            left += times
            continue
        published += len(doc[FIELD])
    _report_backlog(kit, collection=collection, staged_at=left)
    return published


def _report_backlog(kit: Kit, *, collection: str, staged_at: Sequence[datetime.datetime]) -> None:
    """The backlog gauges: a growing count or age means events are not reaching NATS."""
    kit.metrics.outbox_staged.labels(collection).set(len(staged_at))
    readable = [t for t in staged_at if t != _LONG_AGO]
    age = (datetime.datetime.now(datetime.UTC) - min(readable)).total_seconds() if readable else 0
    kit.metrics.outbox_oldest.labels(collection).set(max(age, 0.0))
