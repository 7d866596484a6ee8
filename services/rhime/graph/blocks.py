"""Blocks as stored in the `graph` database: the source of truth other contexts copy from
`user.blocked` / `user.unblocked`.

A block document `{_id: "blocker:blocked"}` is a versioned relation (see `relation`), as a
follow edge is: odd versions block, even ones lift, and each change stages its event in the
same write. A block works both ways: while either of two
people blocks the other, neither can follow the other.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from rhime import events
from rhime.graph import relation

BLOCKS = "blocks"
PAGE = 20

INDEXES = {
    BLOCKS: [
        IndexModel([("blocker", ASCENDING), ("active", ASCENDING), ("blocked", ASCENDING)]),
        IndexModel([("blocked", ASCENDING)]),  # the blocks naming a deleted account
    ],
}


def block_id(blocker: str, blocked: str) -> str:
    return f"{blocker}:{blocked}"


def _event(*, blocker: str, blocked: str, version: int) -> events.Event:
    kind = events.UserBlocked if version % 2 else events.UserUnblocked
    return kind(
        id=f"{kind.SUBJECT}:{blocker}:{blocked}:{version}",
        blocker_id=blocker,
        blocked_id=blocked,
        version=version,
    )


async def transition(db: Any, *, blocker: str, blocked: str, active: bool) -> int | None:
    """Move the block to `active`; returns the new version, or None when it already was
    there. The event of the change is staged in the document in the same write."""
    return await relation.transition(
        db[BLOCKS],
        key=block_id(blocker, blocked),
        active=active,
        event=lambda version: _event(blocker=blocker, blocked=blocked, version=version),
        fields={"blocker": blocker, "blocked": blocked},
    )


async def blocks(db: Any, *, blocker: str, blocked: str) -> bool:
    doc = await db[BLOCKS].find_one({"_id": block_id(blocker, blocked)}, {"active": 1})
    return doc is not None and bool(doc.get("active"))


async def either(db: Any, *, a: str, b: str) -> bool:
    """Whether one of the two blocks the other (two `_id` lookups)."""
    return await blocks(db, blocker=a, blocked=b) or await blocks(db, blocker=b, blocked=a)


async def page(
    db: Any, *, blocker: str, after: str | None, limit: int = PAGE
) -> tuple[list[str], str | None]:
    """The people `blocker` blocks, ascending by id after `after` (keyset), and the cursor."""
    query: dict[str, Any] = {"blocker": blocker, "active": True}
    if after:
        query["blocked"] = {"$gt": after}
    cursor = db[BLOCKS].find(query, {"blocked": 1, "_id": 0}).sort("blocked", ASCENDING)
    found = [doc["blocked"] async for doc in cursor.limit(limit + 1)]
    more = len(found) > limit
    found = found[:limit]
    return found, (found[-1] if more else None)


async def export(db: Any, *, blocker: str) -> list[str]:
    cursor = db[BLOCKS].find({"blocker": blocker, "active": True}, {"blocked": 1, "_id": 0})
    return sorted([doc["blocked"] async for doc in cursor])


async def forget(db: Any, *, user_id: str) -> None:
    """The person deleted their account: every block by or of them goes, without events (each
    context forgets its copy on `user.deleted`)."""
    await db[BLOCKS].delete_many({"blocker": user_id})
    await db[BLOCKS].delete_many({"blocked": user_id})
