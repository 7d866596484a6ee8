"""The follow graph as stored in the `graph` database (read by user-graph-view too).

An edge document `{_id: "follower:followee"}` is the source of truth for one relationship.
It is a versioned relation (see `relation`), kept after an unfollow (`active: False`) so its
`version` keeps counting: odd versions are follows, even versions unfollows, and each state
change gets its own event id. Counts live on the user nodes and move with `$inc` exactly once
per version (see `settle`).

`uncounted` lists the versions whose count change is not applied yet. Settling pulls exactly
the versions it applied, so a version staged meanwhile stays listed without a version-guarded
update: FerretDB's embedded backend pushes down only a lone `_id` filter, and any other filter
scans every edge while the write lock is held.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import AsyncIterator
from typing import Any, Literal

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from rhime import events
from rhime.graph import relation
from rhime.kit import idempotency, outbox, tombstones

USERS = "users"
EDGES = "edges"
PAGE = 20

Direction = Literal["followers", "following"]

INDEXES = {
    EDGES: [
        IndexModel([("followee", ASCENDING), ("active", ASCENDING), ("follower", ASCENDING)]),
        IndexModel([("follower", ASCENDING), ("active", ASCENDING), ("followee", ASCENDING)]),
        IndexModel([("uncounted", ASCENDING), ("changed_at", ASCENDING)]),
    ],
}


def edge_id(follower: str, followee: str) -> str:
    return f"{follower}:{followee}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def add_user(db: Any, *, user_id: str, user_name: str) -> bool:
    """Create the user's node with zero counts; repeating it changes nothing. A person who
    deleted their account is not written back (a late `user.created`, or a lookup that raced
    the deletion): False then."""
    if await tombstones.gone(db[USERS], user_id):
        return False
    try:
        await db[USERS].update_one(
            {"_id": user_id},
            {"$set": {"user_name": user_name}, "$setOnInsert": {"followers": 0, "following": 0}},
            upsert=True,
        )
    except DuplicateKeyError:
        await db[USERS].update_one({"_id": user_id}, {"$set": {"user_name": user_name}})
    if await tombstones.gone(db[USERS], user_id):  # the forgetting began meanwhile: undo
        await db[USERS].delete_one({"_id": user_id})
        return False
    return True


async def exists(db: Any, *, user_id: str) -> bool:
    # a lone `_id` filter: the embedded store answers nothing else without a scan
    doc = await db[USERS].find_one({"_id": user_id}, {"user_name": 1})
    return doc is not None and "user_name" in doc


async def _ensure_node(db: Any, *, user_id: str) -> None:
    """A follower whose `user.created` is still in flight gets a node to count on."""
    if await db[USERS].find_one({"_id": user_id}, {"_id": 1}) is not None:
        return  # the usual case: a read is cheaper than an upsert
    with contextlib.suppress(DuplicateKeyError):
        await db[USERS].update_one(
            {"_id": user_id},
            {"$setOnInsert": {"followers": 0, "following": 0}},
            upsert=True,
        )


def _event(*, follower: str, followee: str, version: int) -> events.Event:
    if version % 2:
        return events.UserFollowed(
            id=f"user.followed:{follower}:{followee}:{version}",
            follower_id=follower,
            followee_id=followee,
            version=version,
        )
    return events.UserUnfollowed(
        id=f"user.unfollowed:{follower}:{followee}:{version}",
        follower_id=follower,
        followee_id=followee,
        version=version,
    )


async def transition(db: Any, *, follower: str, followee: str, active: bool) -> int | None:
    """Move the edge to `active`; returns the new version, or None when it already was there.
    The event for the change is staged in the edge in the same write."""
    await _ensure_node(db, user_id=follower)
    return await relation.transition(
        db[EDGES],
        key=edge_id(follower, followee),
        active=active,
        event=lambda version: _event(follower=follower, followee=followee, version=version),
        fields={"follower": follower, "followee": followee, "counted": 0},
        versions_field="uncounted",
    )


async def settle(db: Any, *, key: str) -> None:
    """Apply the count change of every version not yet counted, each exactly once (the ids
    applied live in the user nodes), then mark the edge counted."""
    doc = await db[EDGES].find_one(
        {"_id": key}, {"follower": 1, "followee": 1, "version": 1, "counted": 1, "uncounted": 1}
    )
    if doc is None:
        return
    for version in range(int(doc.get("counted", 0)) + 1, int(doc["version"]) + 1):
        delta = 1 if version % 2 else -1
        applied = f"edge:{key}:{version}"
        await idempotency.apply_once(
            db[USERS], doc["follower"], {"$inc": {"following": delta}}, event_id=applied
        )
        await idempotency.apply_once(
            db[USERS], doc["followee"], {"$inc": {"followers": delta}}, event_id=applied
        )
    uncounted = doc.get("uncounted")
    if isinstance(uncounted, list):
        if not uncounted:
            return
        await db[EDGES].update_one(
            {"_id": key},
            {"$max": {"counted": doc["version"]}, "$pullAll": {"uncounted": uncounted}},
        )
    elif uncounted is not None:  # staged before versions were listed: the guarded form
        await db[EDGES].update_one(
            {"_id": key, "version": doc["version"]},
            {"$set": {"counted": doc["version"]}, "$unset": {"uncounted": ""}},
        )


async def settle_stale(db: Any, *, older_than: float = 5.0, limit: int = 500) -> int:
    """Settle edges a crash left uncounted; returns how many were settled."""
    cutoff = _now() - datetime.timedelta(seconds=older_than)
    settled = 0
    listed = {"$or": [{"uncounted": True}, {"uncounted.0": {"$exists": True}}]}
    stale = {**listed, "changed_at": {"$lt": cutoff}}
    cursor = db[EDGES].find(stale, {"_id": 1})
    async for doc in cursor.limit(limit):
        await settle(db, key=doc["_id"])
        settled += 1
    return settled


@dataclasses.dataclass(frozen=True)
class Counts:
    followers: int
    following: int


async def counts(db: Any, *, user_id: str) -> Counts | None:
    doc = await db[USERS].find_one(
        {"_id": user_id}, {"user_name": 1, "followers": 1, "following": 1}
    )
    if doc is None or "user_name" not in doc:
        return None
    return Counts(
        followers=max(0, int(doc.get("followers", 0))),
        following=max(0, int(doc.get("following", 0))),
    )


async def follows(db: Any, *, follower: str, followee: str) -> bool:
    doc = await db[EDGES].find_one({"_id": edge_id(follower, followee), "active": True}, {"_id": 1})
    return doc is not None


def _query(user_id: str, direction: Direction) -> tuple[dict[str, Any], str]:
    if direction == "followers":
        return {"followee": user_id, "active": True}, "follower"
    return {"follower": user_id, "active": True}, "followee"


async def page(
    db: Any, *, user_id: str, direction: Direction, after: str | None, limit: int = PAGE
) -> tuple[list[str], str | None]:
    """One page of ids in ascending order after `after` (keyset); and the next cursor."""
    query, field = _query(user_id, direction)
    if after:
        query[field] = {"$gt": after}
    cursor = db[EDGES].find(query, {field: 1, "_id": 0}).sort(field, ASCENDING).limit(limit + 1)
    ids = [doc[field] async for doc in cursor]
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more else None)


async def stream(
    db: Any, *, user_id: str, direction: Direction, batch_size: int
) -> AsyncIterator[list[str]]:
    """Every id of the list in ascending order, in batches (one cursor, served by an index)."""
    query, field = _query(user_id, direction)
    cursor = (
        db[EDGES].find(query, {field: 1, "_id": 0}).sort(field, ASCENDING).batch_size(batch_size)
    )
    batch: list[str] = []
    async for doc in cursor:
        batch.append(doc[field])
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def outbox_pending() -> dict[str, Any]:
    """Filter for edges whose events are not published yet."""
    return dict(outbox.PENDING)
