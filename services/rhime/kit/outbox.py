"""A crash between a database write and its publish must not lose the event.

FerretDB has no multi-document transactions, so events ride inside the document they describe:
the write stores them in its `_outbox` field in the same single-document operation; then they
are published and pulled. A relay republishes whatever a crash left behind (JetStream drops
duplicates by message id; consumers are idempotent anyway). A document marked `_purge` is
removed once its outbox is empty: that is how deletions publish reliably.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rhime import events

if TYPE_CHECKING:
    from rhime.kit.app import Kit

log = logging.getLogger("rhime.outbox")
FIELD = "_outbox"
PURGE = "_purge"
# A range over the indexed `_outbox.id` (a multikey index) finds pending documents without
# scanning the collection.
PENDING = {f"{FIELD}.id": {"$gt": ""}}


def staged(*batch: events.Event) -> list[dict[str, Any]]:
    """The value to store in the document's `_outbox` field with the write."""
    return [{"id": e.id, "subject": e.SUBJECT, "data": e.model_dump(mode="json")} for e in batch]


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


async def _publish(kit: Kit, coll: Any, doc: dict[str, Any]) -> None:
    for entry in doc.get(FIELD) or []:
        model = events.BY_SUBJECT[entry["subject"]]
        await kit.require_bus().publish(model.model_validate(entry["data"]))
        await coll.update_one({"_id": doc["_id"]}, {"$pull": {FIELD: entry}})
    if doc.get(PURGE):
        await coll.delete_one({"_id": doc["_id"], PURGE: True, FIELD: {"$size": 0}})


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
    async for doc in coll.find(PENDING, {FIELD: 1, PURGE: 1}).limit(500):
        staged_at = min(
            datetime.datetime.fromisoformat(e["data"]["occurred_at"]) for e in doc[FIELD]
        )
        if staged_at > cutoff:
            continue
        await _publish(kit, coll, doc)
        published += len(doc[FIELD])
    return published
