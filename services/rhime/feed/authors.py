"""The feed's own index of every author's posts, kept from post events in Mongo
(`posts {_id: post id, user_id, deleted}` indexed by author and id): the source for
profile timelines, timeline rebuilds, follows and big accounts' posts merged at read time.
Deletions leave a tombstone so a late `post.created` cannot bring a post back; a tombstone
does not name its author, who may delete their account."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING, IndexModel

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

POSTS = "posts"
AUTHORS = "authors"  # {_id: user id, big: bool}
INDEXES = {POSTS: [IndexModel([("user_id", 1), ("deleted", 1), ("_id", DESCENDING)])]}


async def record(kit: Kit, *, post_id: str, user_id: str) -> bool:
    """Remember a new post; returns False when it was deleted already."""
    await kit.database[POSTS].update_one(
        {"_id": post_id},
        {"$setOnInsert": {"user_id": user_id, "deleted": False}},
        upsert=True,
    )
    doc = await kit.database[POSTS].find_one({"_id": post_id}, {"deleted": 1})
    return doc is not None and not doc.get("deleted")


async def forget(kit: Kit, *, post_id: str) -> None:
    await kit.database[POSTS].update_one(
        {"_id": post_id}, {"$set": {"deleted": True}, "$unset": {"user_id": ""}}, upsert=True
    )


async def forget_author(kit: Kit, *, user_id: str) -> None:
    """The person deleted their account: their author record, and the author named in
    tombstones written before tombstones stopped naming one (their live posts follow
    `post.deleted`)."""
    await kit.database[AUTHORS].delete_one({"_id": user_id})
    await kit.database[POSTS].update_many(
        {"user_id": user_id, "deleted": True}, {"$unset": {"user_id": ""}}
    )


async def recent(kit: Kit, *, user_ids: Sequence[str], before: str | None, limit: int) -> list[str]:
    """The newest post ids of these authors (below `before`), newest first."""
    if not user_ids:
        return []
    query: dict[str, Any] = {"user_id": {"$in": list(user_ids)}, "deleted": False}
    if before is not None:
        query["_id"] = {"$lt": before}
    cursor = kit.database[POSTS].find(query, {"_id": 1}).sort("_id", DESCENDING).limit(limit)
    return [doc["_id"] async for doc in cursor]


async def set_big(kit: Kit, *, user_id: str, big: bool) -> bool:
    """Record whether the author is a big account; returns whether that changed."""
    result = await kit.database[AUTHORS].update_one(
        {"_id": user_id, "big": {"$ne": big}}, {"$set": {"big": big}}
    )
    if result.matched_count:
        return True
    if big:
        exists = await kit.database[AUTHORS].find_one({"_id": user_id}, {"_id": 1})
        if exists is None:
            await kit.database[AUTHORS].update_one(
                {"_id": user_id}, {"$set": {"big": True}}, upsert=True
            )
            return True
    return False


async def big_among(kit: Kit, *, user_ids: Sequence[str]) -> list[str]:
    if not user_ids:
        return []
    cursor = kit.database[AUTHORS].find({"_id": {"$in": list(user_ids)}, "big": True}, {"_id": 1})
    return [doc["_id"] async for doc in cursor]
