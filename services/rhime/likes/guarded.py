"""Many guarded single-document writes in bulk: "update this document if the guard holds, or
create it if it does not exist yet".

A bulk of upserts whose guard fails would collide on `_id`; pymongo cannot read the reply
FerretDB gives for such a bulk, so the two cases go separately: guarded updates for documents
that exist, inserts for those that do not, and an insert that collides (someone created the
document meanwhile) is retried as a guarded update. Every write stays single-document atomic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


@dataclasses.dataclass(frozen=True, kw_only=True)
class Write:
    doc_id: str
    guard: dict[str, Any]  # extra filter that must hold for the update to apply
    update: dict[str, Any]
    new: dict[str, Any]  # the whole document to insert when none exists


async def apply(coll: Any, writes: Sequence[Write]) -> int:
    """Run the writes; returns how many write operations were sent."""
    if not writes:
        return 0
    ids = [w.doc_id for w in writes]
    existing = {d["_id"] async for d in coll.find({"_id": {"$in": ids}}, {"_id": 1})}
    updates = [w for w in writes if w.doc_id in existing]
    inserts = [w for w in writes if w.doc_id not in existing]
    sent = await _update(coll, updates)
    if inserts:
        sent += len(inserts)
        try:
            await coll.insert_many([{"_id": w.doc_id, **w.new} for w in inserts], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            sent += await _update(coll, [inserts[e["index"]] for e in errors])
    return sent


async def _update(coll: Any, writes: Sequence[Write]) -> int:
    if writes:
        await coll.bulk_write(
            [UpdateOne({"_id": w.doc_id, **w.guard}, w.update) for w in writes], ordered=False
        )
    return len(writes)
