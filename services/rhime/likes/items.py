"""The likes context's own copy of which posts and comments exist, kept from their events.

Upserts are idempotent and deletions leave tombstones, so a repeated or late creation
cannot revive a deleted item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from rhime import events
from rhime.kit import bus, calls, errors

if TYPE_CHECKING:
    from rhime.kit.app import Kit

COLLECTION = "items"
ItemType = Literal["post", "comment"]
log = logging.getLogger(__name__)


async def kind(kit: Kit, *, item_id: str) -> ItemType | None:
    """The item's type, or None when it does not exist (or was deleted)."""
    doc = await kit.database[COLLECTION].find_one({"_id": item_id}, {"type": 1, "deleted": 1})
    if doc is None:
        return await _fresh_post(kit, item_id)
    if doc.get("deleted"):
        return None
    found: ItemType = doc["type"]
    return found


async def _fresh_post(kit: Kit, item_id: str) -> ItemType | None:
    """A post shared a moment ago may not have reached us yet: ask its owner, and remember
    it as its `post.created` would (a tombstone written meanwhile still wins)."""
    try:
        found = await calls.call(
            kit, "post", "POST", "/internal/posts/batch", json={"ids": [item_id]}, timeout=2.0
        )
    except errors.ApiError:
        log.warning("could not ask the post service about item %s", item_id)
        return None
    if item_id not in found.get("posts", {}):
        return None
    await _created(kit, item_id, "post")
    return "post"


async def _created(kit: Kit, item_id: str, item_type: ItemType) -> None:
    await kit.database[COLLECTION].update_one(
        {"_id": item_id},
        {"$setOnInsert": {"type": item_type, "deleted": False}},
        upsert=True,
    )


async def _deleted(kit: Kit, item_id: str, item_type: ItemType) -> None:
    await kit.database[COLLECTION].update_one(
        {"_id": item_id}, {"$set": {"type": item_type, "deleted": True}}, upsert=True
    )


def subscriptions(kit: Kit) -> list[bus.Subscription[Any]]:
    async def post_created(event: events.PostCreated) -> None:
        await _created(kit, event.post_id, "post")

    async def post_deleted(event: events.PostDeleted) -> None:
        await _deleted(kit, event.post_id, "post")

    async def comment_created(event: events.CommentCreated) -> None:
        await _created(kit, event.comment_id, "comment")

    async def comment_deleted(event: events.CommentDeleted) -> None:
        await _deleted(kit, event.comment_id, "comment")

    return [
        bus.Subscription(event=events.PostCreated, handler=post_created),
        bus.Subscription(event=events.PostDeleted, handler=post_deleted),
        bus.Subscription(event=events.CommentCreated, handler=comment_created),
        bus.Subscription(event=events.CommentDeleted, handler=comment_deleted),
    ]
