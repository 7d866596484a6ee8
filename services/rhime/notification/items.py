"""The notification context's own copy of who owns which post and comment, kept from events.

Likes and comments name only the item and the actor; the person to notify is the item's
owner. Deletions leave tombstones, so a late like on a deleted item notifies nobody."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from pymongo import IndexModel

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "items"
INDEXES = {COLLECTION: [IndexModel([("post_id", 1)]), IndexModel([("owner", 1)])]}
ItemType = Literal["post", "comment"]


class NotYetKnown(Exception):
    """An event names an item whose creation has not reached us yet: redeliver it later."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Item:
    item_id: str
    type: ItemType
    owner: str
    post_id: str  # the post itself, or the post a comment is on
    deleted: bool


async def created(kit: Kit, *, item_id: str, type: ItemType, owner: str, post_id: str) -> None:
    # $setOnInsert: a repeated creation cannot revive a tombstone.
    await kit.database[COLLECTION].update_one(
        {"_id": item_id},
        {"$setOnInsert": {"type": type, "owner": owner, "post_id": post_id, "deleted": False}},
        upsert=True,
    )


async def deleted(kit: Kit, *, item_id: str, type: ItemType, owner: str, post_id: str) -> None:
    await kit.database[COLLECTION].update_one(
        {"_id": item_id},
        {
            "$set": {"deleted": True},
            "$setOnInsert": {"type": type, "owner": owner, "post_id": post_id},
        },
        upsert=True,
    )


async def find(kit: Kit, *, item_id: str) -> Item:
    """The item, tombstone or not; NotYetKnown when its creation has not arrived."""
    doc = await kit.database[COLLECTION].find_one({"_id": item_id})
    if doc is None:
        raise NotYetKnown(item_id)
    return _item(doc)


async def comments_on(kit: Kit, *, post_id: str) -> list[str]:
    """Ids of the comments on a post (bounded by the post's comments; run on deletion only)."""
    cursor = kit.database[COLLECTION].find({"post_id": post_id, "type": "comment"}, {"_id": 1})
    return [doc["_id"] async for doc in cursor]


def _item(doc: dict[str, Any]) -> Item:
    return Item(
        item_id=doc["_id"],
        type=doc["type"],
        owner=doc["owner"],
        post_id=doc["post_id"],
        deleted=bool(doc.get("deleted")),
    )
