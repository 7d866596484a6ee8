"""Notification groups: one document per thing people act on ("likes on this post",
"comments on this post", "follows of me on this day", "people new among my recommendations
this week"), one entry per cause in it.

A cause is keyed (the liker, the comment, the follower) and carries the sequence number of
its latest fact, so a like/unlike/like storm, a redelivery or a late event moves one entry
and never adds another. Every change is one conditional single-document update whose filter
says which transition it is, so `count` (the active causes) moves exactly once per
transition. A new cause gives the group a new `key`: it rises to the top and is unread
again; the same person liking again after an unlike does not. A tombstoned group (its post
or comment deleted) takes no more causes."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from typing import TYPE_CHECKING, Any, Literal

import bson
from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "groups"
# every actor ever recorded in the group, so a person's part can be found when they delete
# their account
ACTORS = "actor_ids"
# counts every write to the group's causes (rev counts only what the inbox must see), so
# removing a person's causes can tell that none was written meanwhile
WRITES = "writes"
INDEXES = [IndexModel([("recipient", 1)]), IndexModel([(ACTORS, 1)])]
Kind = Literal["like", "comment", "follow", "recommendation"]
LIVE = {"deleted": {"$ne": True}}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Group:
    group_id: str
    recipient: str
    kind: Kind
    subject: dict[str, str] | None = None  # {"type", "id", "postId"} of the item, if any


@dataclasses.dataclass(frozen=True, kw_only=True)
class State:
    """What the recipient's inbox needs to know of a group after a change."""

    group_id: str
    recipient: str
    key: str
    rev: int
    active: bool


def like_group(*, owner: str, item_type: str, item_id: str, post_id: str) -> Group:
    return Group(
        group_id=f"like:{item_id}",
        recipient=owner,
        kind="like",
        subject={"type": item_type, "id": item_id, "postId": post_id},
    )


def comment_group(*, owner: str, post_id: str) -> Group:
    return Group(
        group_id=f"comment:{post_id}",
        recipient=owner,
        kind="comment",
        subject={"type": "post", "id": post_id, "postId": post_id},
    )


def follow_group(*, followee: str, day: datetime.date) -> Group:
    return Group(group_id=f"follow:{followee}:{day.isoformat()}", recipient=followee, kind="follow")


def recommendation_group(*, recipient: str, week: str) -> Group:
    """The people the weekly refresh recommended to `recipient` for the first time that week."""
    return Group(
        group_id=f"recommendation:{recipient}:{week}", recipient=recipient, kind="recommendation"
    )


async def _ensure(kit: Kit, group: Group) -> None:
    # DuplicateKeyError: a concurrent first cause created it
    with contextlib.suppress(DuplicateKeyError):
        await kit.database[COLLECTION].update_one(
            {"_id": group.group_id},
            {
                "$setOnInsert": {
                    "recipient": group.recipient,
                    "kind": group.kind,
                    "subject": group.subject,
                    "actors": {},
                    "count": 0,
                    "key": "",
                    "rev": 0,
                    "deleted": False,
                }
            },
            upsert=True,
        )


_Attempt = tuple[dict[str, Any], dict[str, Any]]  # (condition, update)


async def record(
    kit: Kit,
    *,
    group: Group,
    cause: str,
    actor: str,
    seq: int,
    active: bool,
    at: datetime.datetime,
) -> State | None:
    """Apply one fact about a cause (`active`: it happened; else it was undone). Returns the
    group's state, or None when the group is gone."""
    await _ensure(kit, group)
    path = f"actors.{cause}"
    if active:
        attempts = _done(path=path, actor=actor, seq=seq, at=at)
    else:
        attempts = _undone(path=path, actor=actor, seq=seq)
    await _apply_first(kit, group_id=group.group_id, attempts=attempts)
    return await state(kit, group_id=group.group_id)


def _older_than(*, path: str, seq: int) -> dict[str, Any]:
    """The cause's latest fact is older than `seq`."""
    return {f"{path}.s": {"$lt": seq}}


def _unknown(*, path: str) -> dict[str, Any]:
    """The cause was never recorded."""
    return {path: {"$exists": False}}


def _done(*, path: str, actor: str, seq: int, at: datetime.datetime) -> list[_Attempt]:
    """The transitions of a cause that happened, in the order to try them."""
    older = _older_than(path=path, seq=seq)
    return [
        # a cause never seen active before: counts, and raises the group
        (
            {f"{path}.seen": {"$ne": True}, "$or": [older, _unknown(path=path)]},
            {
                "$set": {
                    path: {"a": actor, "s": seq, "on": True, "seen": True, "t": at},
                    "key": str(bson.ObjectId()),
                    "at": at,
                },
                "$inc": {"count": 1, "rev": 1},
                "$addToSet": {ACTORS: actor},
            },
        ),
        # back after an undo: counts again, stays where it was
        (
            {f"{path}.on": False, **older},
            {"$set": {f"{path}.s": seq, f"{path}.on": True}, "$inc": {"count": 1, "rev": 1}},
        ),
        ({f"{path}.on": True, **older}, {"$set": {f"{path}.s": seq}}),
    ]


def _undone(*, path: str, actor: str, seq: int) -> list[_Attempt]:
    """The transitions of a cause that was undone, in the order to try them."""
    older = _older_than(path=path, seq=seq)
    return [
        (
            {f"{path}.on": True, **older},
            {
                "$set": {f"{path}.s": seq, f"{path}.on": False},
                "$inc": {"count": -1, "rev": 1},
            },
        ),
        # undone before (or without) being seen: remember it, so a late "done" of an
        # older fact cannot count
        (
            {"$or": [older, _unknown(path=path)]},
            {
                "$set": {f"{path}.s": seq, f"{path}.on": False, f"{path}.a": actor},
                "$addToSet": {ACTORS: actor},
            },
        ),
    ]


async def _apply_first(kit: Kit, *, group_id: str, attempts: list[_Attempt]) -> None:
    """Try each transition until one matches; a fact no transition fits (stale, or the group
    tombstoned) changes nothing."""
    coll = kit.database[COLLECTION]
    for condition, update in attempts:
        update["$inc"] = {**update.get("$inc", {}), WRITES: 1}
        result = await coll.update_one({"_id": group_id, **LIVE, **condition}, update)
        if result.matched_count:
            break


async def drop_actor(kit: Kit, *, group_id: str, actor: str) -> State | None:
    """Remove every cause of `actor` from the group (they deleted their account), the active
    ones from its count too; one write, retried if a cause was written meanwhile."""
    coll = kit.database[COLLECTION]
    for _ in range(20):
        doc = await coll.find_one({"_id": group_id}, {"actors": 1, WRITES: 1})
        if doc is None:
            return None
        theirs = {k: c for k, c in (doc.get("actors") or {}).items() if c.get("a") == actor}
        active = sum(1 for c in theirs.values() if c.get("on"))
        update: dict[str, Any] = {
            "$pull": {ACTORS: actor},
            "$inc": {"rev": 1, "count": -active, WRITES: 1},
        }
        if theirs:
            update["$unset"] = {f"actors.{k}": "" for k in theirs}
        # a group written before writes were counted has none: that matches a missing field
        result = await coll.update_one({"_id": group_id, WRITES: doc.get(WRITES)}, update)
        if result.matched_count:
            return await state(kit, group_id=group_id)
    raise RuntimeError(f"group {group_id} kept changing")


async def remove(kit: Kit, *, group: Group) -> State | None:
    """Tombstone the group: its item was deleted, so it shows no more and takes no causes.
    A group never created stays so: the item's own tombstone turns late causes away."""
    await kit.database[COLLECTION].update_one(
        {"_id": group.group_id, **LIVE}, {"$set": {"deleted": True}, "$inc": {"rev": 1}}
    )
    return await state(kit, group_id=group.group_id)


async def state(kit: Kit, *, group_id: str) -> State | None:
    doc = await kit.database[COLLECTION].find_one(
        {"_id": group_id}, {"recipient": 1, "key": 1, "rev": 1, "count": 1, "deleted": 1}
    )
    if doc is None:
        return None
    return State(
        group_id=group_id,
        recipient=doc["recipient"],
        key=doc["key"],
        rev=int(doc["rev"]),
        active=not doc.get("deleted") and int(doc["count"]) > 0,
    )


async def load(kit: Kit, *, group_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not group_ids:
        return {}
    cursor = kit.database[COLLECTION].find({"_id": {"$in": group_ids}, **LIVE})
    return {doc["_id"]: doc async for doc in cursor}


async def forget(kit: Kit, *, group_id: str, key: str) -> None:
    """Drop a group that fell out of its recipient's newest N, unless it rose meanwhile."""
    await kit.database[COLLECTION].delete_one({"_id": group_id, "key": key})
