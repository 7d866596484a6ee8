"""Tombstones: what a store keeps of a person who deleted their account, so that a late or
repeated event (or a lookup that raced the deletion) cannot write them back.

A tombstone is `{_id: "gone:" + sha256(userId)}` in the collection it guards: it does not
name the person, and finding it is one `_id` lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from pymongo.errors import DuplicateKeyError


def key(user_id: str) -> str:
    return "gone:" + hashlib.sha256(user_id.encode()).hexdigest()


async def lay(collection: Any, *, user_id: str) -> None:
    """Mark the person gone; repeating it changes nothing."""
    with contextlib.suppress(DuplicateKeyError):  # a concurrent upsert laid it
        await collection.update_one(
            {"_id": key(user_id)}, {"$setOnInsert": {"gone": True}}, upsert=True
        )


async def gone(collection: Any, *people: str) -> list[str]:
    """Those of `people` who deleted their account. One `_id` lookup each: the embedded store
    scans the whole collection for an `$in`."""
    found = await asyncio.gather(
        *(collection.find_one({"_id": key(p)}, {"_id": 1}) for p in people)
    )
    return [p for p, doc in zip(people, found, strict=True) if doc is not None]
