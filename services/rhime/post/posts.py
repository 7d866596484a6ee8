"""Post storage: one document per post with its track embedded (posts are immutable, so a
post renders from one read). Events ride in the document's outbox, so `post.created` and
`post.deleted` are never lost between the write and the publish."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import bson
from pymongo import DESCENDING, IndexModel

from rhime import events
from rhime.kit import errors, ids, outbox
from rhime.post import models

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "posts"
INDEXES = {COLLECTION: [IndexModel([("user_id", 1), ("_id", DESCENDING)])]}
LIVE = {outbox.PURGE: {"$ne": True}}  # a post being deleted is already gone for readers


object_id = ids.object_id


def render(doc: dict[str, Any]) -> models.PostOut:
    created: datetime.datetime = doc["created_at"]
    return models.PostOut(
        postId=doc["_id"],
        userId=doc["user_id"],
        createdAt=created.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
        caption=doc.get("caption", ""),
        track=models.TrackOut(**doc["track"]),
    )


async def create(
    kit: Kit, *, user_id: str, post: models.NewPost, found: models.Track
) -> models.PostOut:
    oid = bson.ObjectId()
    post_id = str(oid)
    created_at = oid.generation_time
    track = found.model_dump(mode="json")
    event = events.PostCreated(
        id=f"post.created:{post_id}", post_id=post_id, user_id=user_id, created_at=created_at
    )
    doc = {
        "_id": post_id,
        "user_id": user_id,
        "track": track,
        "caption": post.caption,
        "created_at": created_at,
        outbox.FIELD: outbox.staged(event),
    }
    await kit.database[COLLECTION].insert_one(doc)
    await outbox.try_flush(kit, collection=COLLECTION, doc_id=post_id)
    return render(doc)


async def get(kit: Kit, *, post_id: str) -> models.PostOut:
    doc = await kit.database[COLLECTION].find_one({"_id": post_id, **LIVE})
    if doc is None:
        raise errors.not_found("No such post exists.")
    return render(doc)


async def get_many(kit: Kit, *, post_ids: list[str]) -> dict[str, models.PostOut]:
    wanted = sorted({p for p in post_ids if bson.ObjectId.is_valid(p) and len(p) == 24})
    if not wanted:
        return {}
    cursor = kit.database[COLLECTION].find({"_id": {"$in": wanted}, **LIVE}).limit(len(wanted))
    return {doc["_id"]: render(doc) async for doc in cursor}


async def of_user(kit: Kit, *, user_id: str, before: str | None, limit: int) -> models.PostPage:
    """A user's posts, newest first; `before` is the exclusive keyset anchor (a post id)."""
    query: dict[str, Any] = {"user_id": user_id, **LIVE}
    if before is not None:
        query["_id"] = {"$lt": before}
    cursor = kit.database[COLLECTION].find(query).sort("_id", DESCENDING).limit(limit + 1)
    docs = [doc async for doc in cursor]
    page = [render(d) for d in docs[:limit]]
    return models.PostPage(posts=page, next=page[-1].postId if len(docs) > limit else None)


async def count(kit: Kit, *, user_id: str) -> int:
    return int(await kit.database[COLLECTION].count_documents({"user_id": user_id, **LIVE}))


async def _retire(kit: Kit, *, user_id: str, post_id: str) -> bool:
    """Mark the post purged with its `post.deleted` event in one write; the outbox publishes
    the event and then removes the document (a crash in between is finished by the relay).
    False when it is not a live post of the user."""
    event = events.PostDeleted(id=f"post.deleted:{post_id}", post_id=post_id, user_id=user_id)
    result = await kit.database[COLLECTION].update_one(
        {"_id": post_id, "user_id": user_id, **LIVE},
        {"$set": {outbox.PURGE: True}, **outbox.push(event)},
    )
    return bool(result.matched_count)


async def delete(kit: Kit, *, user_id: str, post_id: str) -> None:
    coll = kit.database[COLLECTION]
    if not await _retire(kit, user_id=user_id, post_id=post_id):
        existing = await coll.find_one({"_id": post_id, **LIVE}, {"user_id": 1})
        if existing is None:
            raise errors.not_found("No such post exists.")
        raise errors.forbidden("You can only delete your own posts.")
    await outbox.try_flush(kit, collection=COLLECTION, doc_id=post_id)


async def delete_all(kit: Kit, *, user_id: str, batch: int = 100) -> int:
    """The person deleted their account: each of their posts goes the way one deletion
    goes (`post.deleted`, which the comment, like, feed and notification components act
    on). Safe to repeat: a post already marked is the outbox relay's to finish."""
    coll = kit.database[COLLECTION]
    retired = 0
    while True:
        found = coll.find({"user_id": user_id, **LIVE}, {"_id": 1}).limit(batch)
        post_ids = [doc["_id"] async for doc in found]
        if not post_ids:
            return retired
        for post_id in post_ids:
            if await _retire(kit, user_id=user_id, post_id=post_id):
                retired += 1
                await outbox.flush(kit, collection=COLLECTION, doc_id=post_id)


async def export(kit: Kit, *, user_id: str) -> list[models.PostOut]:
    """Every live post of the user, oldest first (their data export)."""
    cursor = kit.database[COLLECTION].find({"user_id": user_id, **LIVE}).sort("_id", 1)
    return [render(doc) async for doc in cursor]
