"""The comment service's own copy of which posts exist, kept from post events.

Upserts are idempotent and a deletion leaves a tombstone, so a late or repeated
`post.created` cannot bring a deleted post back. A live post names its author (`user_id`:
the comment service refuses comments between people of whom one blocks the other); the
tombstone does not, so it cannot outlive its author's account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rhime import events
from rhime.kit import lookups, outbox

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "posts"


async def exists(kit: Kit, *, post_id: str) -> bool:
    return await author(kit, post_id=post_id) is not None


async def author(kit: Kit, *, post_id: str) -> str | None:
    """Who shared the post, or None when it does not exist (or was deleted)."""
    doc = await kit.database[COLLECTION].find_one({"_id": post_id}, {"deleted": 1, "user_id": 1})
    if doc is not None:
        if doc.get("deleted", False):
            return None
        if doc.get("user_id"):
            return str(doc["user_id"])
    # A post shared a moment ago may not have reached us yet (or was recorded before its
    # author was): ask, and remember the answer as its `post.created` would (a tombstone
    # written meanwhile still wins).
    user_id = await lookups.post_author(kit, post_id=post_id)
    if user_id is not None:
        await _record(kit, post_id, user_id)
    return user_id


async def _record(kit: Kit, post_id: str, user_id: str) -> None:
    # A lone `_id` filter (anything more is a scan on the embedded store): a tombstone keeps
    # `deleted`, and a deletion after this unsets the author again.
    await kit.database[COLLECTION].update_one(
        {"_id": post_id},
        {"$set": {"user_id": user_id}, "$setOnInsert": {"deleted": False}},
        upsert=True,
    )


async def on_created(kit: Kit, event: events.PostCreated) -> None:
    # only a new record gets the author: a tombstone must not name one again
    await kit.database[COLLECTION].update_one(
        {"_id": event.post_id},
        {"$setOnInsert": {"deleted": False, "user_id": event.user_id}},
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
