"""The likes context's own copy of which posts and comments exist, kept from their events.

Upserts are idempotent and deletions leave tombstones, so a repeated or late creation
cannot revive a deleted item. A live item names its owner (likes between people of whom one
blocks the other are refused); its tombstone does not."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from rhime import events
from rhime.kit import bus, lookups

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "items"
ItemType = Literal["post", "comment"]


@dataclasses.dataclass(frozen=True)
class Item:
    type: ItemType
    owner: str | None  # who shared or wrote it (None: recorded before owners were)


async def kind(kit: Kit, *, item_id: str) -> ItemType | None:
    """The item's type, or None when it does not exist (or was deleted)."""
    found = await find(kit, item_id=item_id)
    return None if found is None else found.type


async def find(kit: Kit, *, item_id: str) -> Item | None:
    """The item, or None when it does not exist (or was deleted)."""
    doc = await kit.database[COLLECTION].find_one(
        {"_id": item_id}, {"type": 1, "deleted": 1, "owner": 1}
    )
    if doc is None:
        return await _fresh_post(kit, item_id)
    if doc.get("deleted"):
        return None
    return Item(type=doc["type"], owner=doc.get("owner"))


async def _fresh_post(kit: Kit, item_id: str) -> Item | None:
    """A post shared a moment ago may not have reached us yet: ask, and remember it as its
    `post.created` would (a tombstone written meanwhile still wins)."""
    owner = await lookups.post_author(kit, post_id=item_id)
    if owner is None:
        return None
    await _created(kit, item_id, "post", owner)
    return Item(type="post", owner=owner)


async def _created(kit: Kit, item_id: str, item_type: ItemType, owner: str) -> None:
    # only a new record gets the owner: a tombstone must not name one again
    await kit.database[COLLECTION].update_one(
        {"_id": item_id},
        {"$setOnInsert": {"type": item_type, "deleted": False, "owner": owner}},
        upsert=True,
    )


async def _deleted(kit: Kit, item_id: str, item_type: ItemType) -> None:
    await kit.database[COLLECTION].update_one(
        {"_id": item_id},
        {"$set": {"type": item_type, "deleted": True}, "$unset": {"owner": ""}},
        upsert=True,
    )


def subscriptions(kit: Kit) -> list[bus.Subscription[Any]]:
    async def post_created(event: events.PostCreated) -> None:
        await _created(kit, event.post_id, "post", event.user_id)

    async def post_deleted(event: events.PostDeleted) -> None:
        await _deleted(kit, event.post_id, "post")

    async def comment_created(event: events.CommentCreated) -> None:
        await _created(kit, event.comment_id, "comment", event.user_id)

    async def comment_deleted(event: events.CommentDeleted) -> None:
        await _deleted(kit, event.comment_id, "comment")

    return [
        bus.Subscription(event=events.PostCreated, handler=post_created),
        bus.Subscription(event=events.PostDeleted, handler=post_deleted),
        bus.Subscription(event=events.CommentCreated, handler=comment_created),
        bus.Subscription(event=events.CommentDeleted, handler=comment_deleted),
    ]
