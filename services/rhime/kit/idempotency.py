"""Apply an event's effect to one document exactly once.

The ids of the last events applied live in the document itself, so the check and the effect
are one single-document atomic update (no transaction needed, which FerretDB lacks).
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

FIELD = "_applied"
KEEP = 200  # redeliveries arrive within minutes; a window of recent ids is enough


async def apply_once(
    collection: Any,
    doc_id: Any,
    update: dict[str, Any],
    *,
    event_id: str,
    upsert: bool = True,
) -> bool:
    """Run `update` on the document unless `event_id` was applied to it already. Returns
    whether the update ran. `update` must not use `$push` on the same field."""
    update = dict(update)
    pushes = dict(update.get("$push", {}))
    pushes[FIELD] = {"$each": [event_id], "$slice": -KEEP}
    update["$push"] = pushes
    try:
        result = await collection.update_one(
            {"_id": doc_id, FIELD: {"$ne": event_id}}, update, upsert=upsert
        )
    except DuplicateKeyError:
        return False  # the document exists and has the id: the upsert's insert collided
    return bool(result.modified_count or result.upserted_id is not None)
