"""Who may not reach whom: the copy of user-graph's blocks that a context keeps from
`user.blocked` and `user.unblocked` (and forgets on `user.deleted`), in its own database.

One document per person, `{_id: userId, out: {otherId: version}, in: {otherId: version}}`:
`out` the people they block, `in` the people who block them. A pair's version only grows
(odd: blocked, even: lifted) and `$max` keeps the highest, so repeated, late and reordered
deliveries all end in the same state without a read. A block works both ways, so whom a
person may not reach is one `_id` lookup (the one query every store serves without a scan).

Forgetting a person leaves a tombstone (`kit.tombstones`), so a `user.blocked` delivered
again after their `user.deleted` (a redelivery, an ack lost) cannot write them back: `apply`
skips a pair with a tombstone, and looks again after writing, undoing what it wrote if the
forgetting began meanwhile.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.errors import DuplicateKeyError

from rhime import events
from rhime.kit import tombstones

COLLECTION = "blocks"
Change = events.UserBlocked | events.UserUnblocked


async def _max(db: Any, user_id: str, field: str, version: int) -> None:
    update = {"$max": {field: version}}
    try:
        await db[COLLECTION].update_one({"_id": user_id}, update, upsert=True)
    except DuplicateKeyError:  # a concurrent upsert made the document: update it
        await db[COLLECTION].update_one({"_id": user_id}, update)


async def apply(db: Any, event: Change) -> None:
    """Record a block or its lifting on both people's documents (idempotent); nothing for a
    pair of which one has deleted their account."""
    pair = (event.blocker_id, event.blocked_id)
    if await tombstones.gone(db[COLLECTION], *pair):
        return
    await _max(db, event.blocker_id, f"out.{event.blocked_id}", event.version)
    await _max(db, event.blocked_id, f"in.{event.blocker_id}", event.version)
    # forgotten while we wrote: forget again
    for user_id in await tombstones.gone(db[COLLECTION], *pair):
        await _erase(db, user_id=user_id)


def _active(doc: dict[str, Any] | None) -> set[str]:
    if doc is None:
        return set()
    return {
        other
        for side in ("out", "in")
        for other, version in (doc.get(side) or {}).items()
        if int(version) % 2
    }


async def hidden(db: Any, *, user_id: str) -> set[str]:
    """Everyone `user_id` blocks or is blocked by."""
    return _active(await db[COLLECTION].find_one({"_id": user_id}))


async def between(db: Any, *, a: str, b: str) -> bool:
    """Whether either of the two blocks the other."""
    return a != b and b in await hidden(db, user_id=a)


async def forget(db: Any, *, user_id: str) -> None:
    """The person deleted their account: a tombstone first (so nothing writes them back),
    then their document goes, and so do the entries naming them in others' documents (those
    before it, so a redelivery after a crash finds them)."""
    await tombstones.lay(db[COLLECTION], user_id=user_id)
    await _erase(db, user_id=user_id)


async def _erase(db: Any, *, user_id: str) -> None:
    doc = await db[COLLECTION].find_one({"_id": user_id})
    if doc is None:
        return
    for side, mirror in (("out", "in"), ("in", "out")):
        for other in doc.get(side) or {}:
            with contextlib.suppress(DuplicateKeyError):
                await db[COLLECTION].update_one(
                    {"_id": other}, {"$unset": {f"{mirror}.{user_id}": ""}}
                )
    await db[COLLECTION].delete_one({"_id": user_id})
