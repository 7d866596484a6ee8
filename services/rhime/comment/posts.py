"""The comment service's own copy of which posts exist, kept from post events.

Upserts are idempotent and a deletion leaves a tombstone, so a late or repeated
`post.created` cannot bring a deleted post back. Nothing here names the author: a tombstone
must not outlive its author's account (older documents' `user_id` is dropped on deletion)."""

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
        {"$setOnInsert": {"deleted": False}},
        upsert=True,
    )


async def on_deleted(kit: Kit, event: events.PostDeleted) -> None:
    db: Any = kit.database
    await db[COLLECTION].update_one(
        {"_id": event.post_id},
        {"$set": {"deleted": True}, "$unset": {"user_id": ""}},
        upsert=True,
    )
    # The post's comments go with it, each through its outbox with a `comment.deleted`, so
    # that the like service retires them too (one being deleted already has its event).
    live = {"post_id": event.post_id, outbox.PURGE: {"$ne": True}}
    async for doc in db["comments"].find(live, {"user_id": 1, "post_id": 1}):
        await retire(db, doc)


async def retire(db: Any, doc: dict[str, Any]) -> bool:
    """Mark a live comment (`_id`, `post_id`, `user_id`) purged with its `comment.deleted`;
    False when it was marked already."""
    gone = events.CommentDeleted(
        id=f"comment.deleted:{doc['_id']}",
        comment_id=doc["_id"],
        post_id=doc["post_id"],
        user_id=doc["user_id"],
    )
    result = await db["comments"].update_one(
        {"_id": doc["_id"], outbox.PURGE: {"$ne": True}},
        {"$set": {outbox.PURGE: True}, **outbox.push(gone)},
    )
    return bool(result.matched_count)
