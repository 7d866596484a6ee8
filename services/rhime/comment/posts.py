"""The comment service's own copy of which posts exist, kept from post events.

Upserts are idempotent and a deletion leaves a tombstone, so a late or repeated
`post.created` cannot bring a deleted post back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rhime import events
from rhime.kit import outbox

if TYPE_CHECKING:
    from rhime.kit.app import Kit

COLLECTION = "posts"


async def exists(kit: Kit, *, post_id: str) -> bool:
    doc = await kit.database[COLLECTION].find_one({"_id": post_id}, {"deleted": 1})
    return doc is not None and not doc.get("deleted", False)


async def on_created(kit: Kit, event: events.PostCreated) -> None:
    await kit.database[COLLECTION].update_one(
        {"_id": event.post_id},
        {"$setOnInsert": {"user_id": event.user_id, "deleted": False}},
        upsert=True,
    )


async def on_deleted(kit: Kit, event: events.PostDeleted) -> None:
    db: Any = kit.database
    await db[COLLECTION].update_one(
        {"_id": event.post_id},
        {"$set": {"deleted": True, "user_id": event.user_id}},
        upsert=True,
    )
    # The post's comments go with it; their count no longer matters to anyone.
    # (one being deleted already is left to its outbox, which publishes its event).
    await db["comments"].delete_many({"post_id": event.post_id, outbox.PURGE: {"$ne": True}})
