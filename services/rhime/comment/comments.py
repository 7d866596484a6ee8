"""Comment storage: `comments` keyed by ObjectId, listed per post newest first. Creation
stages `comment.created` in the comment document; deletion marks it purged with
`comment.deleted`, and the outbox removes it once the event is out."""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING, Any

import bson
from pymongo import DESCENDING, IndexModel

from rhime import blocking, events
from rhime.comment import models, posts
from rhime.kit import errors, ids, outbox

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "comments"
INDEXES = {
    COLLECTION: [
        IndexModel([("post_id", 1), ("_id", DESCENDING)]),
        IndexModel([("user_id", 1)]),  # a person's comments, when they delete their account
    ],
    # only older tombstones name their author
    posts.COLLECTION: [IndexModel([("user_id", 1)], sparse=True)],
}
LIVE = {outbox.PURGE: {"$ne": True}}


object_id = ids.object_id


def render(doc: dict[str, Any]) -> models.CommentOut:
    created: datetime.datetime = doc["created_at"]
    return models.CommentOut(
        commentId=doc["_id"],
        postId=doc["post_id"],
        userId=doc["user_id"],
        text=doc["text"],
        createdAt=created.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
    )


async def create(kit: Kit, *, user_id: str, post_id: str, text: str) -> models.CommentOut:
    author = await posts.author(kit, post_id=post_id)
    if author is None:
        raise errors.not_found("No such post exists.")
    if await blocking.between(kit.database, a=user_id, b=author):
        raise errors.forbidden("You cannot comment on this person's posts.")
    oid = bson.ObjectId()
    comment_id = str(oid)
    event = events.CommentCreated(
        id=f"comment.created:{comment_id}",
        comment_id=comment_id,
        post_id=post_id,
        user_id=user_id,
    )
    doc = {
        "_id": comment_id,
        "post_id": post_id,
        "user_id": user_id,
        "text": text,
        "created_at": oid.generation_time,
        outbox.FIELD: outbox.staged(event),
    }
    await kit.database[COLLECTION].insert_one(doc)
    # The post may have been deleted since the check: its deletion marks the post, then
    # removes its comments. Looking again after the insert closes the gap between the two.
    if not await posts.exists(kit, post_id=post_id):
        await kit.database[COLLECTION].delete_one({"_id": comment_id})
        raise errors.not_found("No such post exists.")
    await outbox.try_flush(kit, collection=COLLECTION, doc_id=comment_id)
    return render(doc)


async def of_post(kit: Kit, *, post_id: str, before: str | None, limit: int) -> models.CommentPage:
    query: dict[str, Any] = {"post_id": post_id, **LIVE}
    if before is not None:
        query["_id"] = {"$lt": before}
    cursor = kit.database[COLLECTION].find(query).sort("_id", DESCENDING).limit(limit + 1)
    docs = [doc async for doc in cursor]
    page = [render(d) for d in docs[:limit]]
    return models.CommentPage(comments=page, next=page[-1].commentId if len(docs) > limit else None)


async def count(kit: Kit, *, post_id: str) -> int:
    return int(await kit.database[COLLECTION].count_documents({"post_id": post_id, **LIVE}))


async def counts(kit: Kit, *, post_ids: list[str]) -> dict[str, int]:
    """Comment counts of many posts (each an indexed count, run concurrently)."""
    wanted = sorted(set(post_ids))
    found = await asyncio.gather(*(count(kit, post_id=p) for p in wanted))
    return dict(zip(wanted, found, strict=True))


async def delete(kit: Kit, *, user_id: str, comment_id: str) -> None:
    coll = kit.database[COLLECTION]
    doc = await coll.find_one({"_id": comment_id, **LIVE}, {"user_id": 1, "post_id": 1})
    if doc is None:
        raise errors.not_found("No such comment exists.")
    if doc["user_id"] != user_id:
        raise errors.forbidden("You can only delete your own comments.")
    event = events.CommentDeleted(
        id=f"comment.deleted:{comment_id}",
        comment_id=comment_id,
        post_id=doc["post_id"],
        user_id=user_id,
    )
    result = await coll.update_one(
        {"_id": comment_id, "user_id": user_id, **LIVE},
        {"$set": {outbox.PURGE: True}, **outbox.push(event)},
    )
    if result.matched_count == 0:
        raise errors.not_found("No such comment exists.")
    await outbox.try_flush(kit, collection=COLLECTION, doc_id=comment_id)


async def delete_all(kit: Kit, *, user_id: str, batch: int = 100) -> int:
    """The person deleted their account: each of their comments goes the way one deletion
    goes (`comment.deleted`: likes retired, notifications withdrawn; comment counts are
    counted live). Their posts' own comments follow `post.deleted`. Safe to repeat."""
    coll = kit.database[COLLECTION]
    retired = 0
    while True:
        found = coll.find({"user_id": user_id, **LIVE}, {"user_id": 1, "post_id": 1})
        docs = [doc async for doc in found.limit(batch)]
        if not docs:
            break
        for doc in docs:
            if await posts.retire(kit.database, doc):
                retired += 1
                await outbox.flush(kit, collection=COLLECTION, doc_id=doc["_id"])
    # older tombstones of their posts named them
    await kit.database[posts.COLLECTION].update_many(
        {"user_id": user_id}, {"$unset": {"user_id": ""}}
    )
    return retired


async def export(kit: Kit, *, user_id: str) -> list[models.CommentOut]:
    """Every live comment of the user, oldest first (their data export)."""
    cursor = kit.database[COLLECTION].find({"user_id": user_id, **LIVE}).sort("_id", 1)
    return [render(doc) async for doc in cursor]
