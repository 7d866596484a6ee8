"""like-reconcile (daily CronJob; `rhime serve like-reconcile` runs it by hand): recounts
every item's likes from the persisted like state and repairs counts that drifted (after a
Redis data loss, a dead-lettered event, a bug).

Both collections are walked in item order through indexes, so memory stays bounded however
many likes there are. An item touched within the quiet period is skipped: its count may
legitimately trail its state while the batch updater's next flush is on its way; the next
run checks it. A repair is a conditional write on the old count, so it never overwrites a
flush that lands meanwhile.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from rhime.kit import stores
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import counts, state

log = logging.getLogger("rhime.likes.reconcile")


class Settings(KitSettings):
    quiet_minutes: float = Field(
        default=10.0,
        ge=0,
        description="minutes an item must be untouched to be checked (a pending flush may "
        "still be on its way)",
    )
    dry_run: bool = Field(default=False, description="only log drifted counts, repair nothing")


async def run(settings: Settings) -> int:
    client: Any = stores.mongo(settings, appname="like-reconcile")
    try:
        database = client[settings.database_name("likes")]
        fixed = await reconcile(
            database,
            quiet=datetime.timedelta(minutes=settings.quiet_minutes),
            dry_run=settings.dry_run,
        )
    finally:
        client.close()
    log.info("like counts checked; %d repaired", len(fixed))
    return 0


async def reconcile(
    database: Any, *, quiet: datetime.timedelta, dry_run: bool = False
) -> dict[str, tuple[int, int]]:
    """Repair drifted counts; returns {item: (old count, true count)} of what it fixed."""
    cutoff = datetime.datetime.now(datetime.UTC) - quiet
    likes = _true_counts(database[state.COLLECTION], cutoff)
    stored = _stored_counts(database[counts.COLLECTION])
    fixed: dict[str, tuple[int, int]] = {}
    like_row = await anext(likes, None)
    count_row = await anext(stored, None)
    while like_row is not None or count_row is not None:
        if count_row is None or (like_row is not None and like_row[0] < count_row[0]):
            assert like_row is not None
            item, truth, busy = like_row
            old, touched, exists = 0, None, False
            like_row = await anext(likes, None)
        elif like_row is None or count_row[0] < like_row[0]:
            item, old, touched = count_row
            truth, busy, exists = 0, False, True
            count_row = await anext(stored, None)
        else:
            item, truth, busy = like_row
            _, old, touched = count_row
            exists = True
            like_row = await anext(likes, None)
            count_row = await anext(stored, None)
        if old == truth or busy or (touched is not None and touched > cutoff):
            continue
        log.warning("like count of %s drifted: stored %d, true %d", item, old, truth)
        fixed[item] = (old, truth)
        if not dry_run:
            await _repair(database[counts.COLLECTION], item, old, truth, exists=exists)
    return fixed


async def _true_counts(
    coll: Any, cutoff: datetime.datetime
) -> AsyncIterator[tuple[str, int, bool]]:
    """(item, likes, touched recently) per item, in item order."""
    current: str | None = None
    n, busy = 0, False
    cursor = coll.find({}, {"item_id": 1, "liked": 1, "updated_at": 1}).sort(
        [("item_id", 1), ("liked", 1)]
    )
    async for doc in cursor:
        if doc["item_id"] != current:
            if current is not None:
                yield current, n, busy
            current, n, busy = doc["item_id"], 0, False
        n += 1 if doc.get("liked") else 0
        busy = busy or doc["updated_at"] > cutoff
    if current is not None:
        yield current, n, busy


async def _stored_counts(
    coll: Any,
) -> AsyncIterator[tuple[str, int, datetime.datetime | None]]:
    async for doc in coll.find({}, {"count": 1, "updated_at": 1}).sort("_id", 1):
        yield doc["_id"], int(doc.get("count", 0)), doc.get("updated_at")


async def _repair(coll: Any, item: str, old: int, truth: int, *, exists: bool) -> None:
    now = datetime.datetime.now(datetime.UTC)
    if exists:
        await coll.update_one(
            {"_id": item, "count": old}, {"$set": {"count": truth, "updated_at": now}}
        )
    else:
        await coll.update_one(
            {"_id": item},
            {"$setOnInsert": {"count": truth, "updated_at": now}},
            upsert=True,
        )
