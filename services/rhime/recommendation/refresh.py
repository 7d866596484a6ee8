"""music-refresh: the weekly CronJob that enqueues the taste refresh in batches.

It pages through connected users by id and enqueues one rq job per batch
(`refresh-{week}-{n}`), recording after each batch the last user id in the week's progress
document. A restarted run resumes after that id; the job ids make a batch enqueued twice
(a crash between enqueue and record) run once. Each week has its own document, so the
refresh repeats every week.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import redis

from rhime.kit import stores
from rhime.recommendation import jobs, store
from rhime.recommendation.settings import RefreshSettings

log = logging.getLogger("rhime.recommendation.refresh")


def week_of(moment: datetime.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


async def enqueue_week(
    db: Any,
    *,
    settings: RefreshSettings,
    week: str,
    max_batches: int | None = None,
) -> dict[str, Any]:
    """Enqueue the week's remaining batches; returns the progress document.
    `max_batches` stops early (a run cut short, as by a crash)."""
    progress = db[store.REFRESHES]
    await _start(progress, week=week)
    conn = jobs.connection(settings)
    enqueued = 0
    try:
        while max_batches is None or enqueued < max_batches:
            # re-read each time: the cursor is the document's, not this run's
            state = await progress.find_one({"_id": week})
            if state.get("finishedAt"):
                break
            users = await _next_users(db, after=state["after"], limit=settings.refresh_batch)
            if not users:
                await _finish(progress, week=week)
                break
            await _enqueue_batch(
                progress, conn, settings=settings, week=week, state=state, users=users
            )
            enqueued += 1
    finally:
        conn.close()
    found: dict[str, Any] = await progress.find_one({"_id": week})
    return found


async def _start(progress: Any, *, week: str) -> None:
    """The week's progress document, unless a run before this one created it."""
    await progress.update_one(
        {"_id": week},
        {
            "$setOnInsert": {
                "after": "",
                "batches": 0,
                "users": 0,
                "startedAt": datetime.datetime.now(datetime.UTC),
            }
        },
        upsert=True,
    )


async def _next_users(db: Any, *, after: str, limit: int) -> list[str]:
    """The next batch: connected users by id, after the last one enqueued."""
    return [
        doc["_id"]
        async for doc in db[store.TOKENS]
        .find({"connected": True, "_id": {"$gt": after}}, {"_id": 1})
        .sort("_id", 1)
        .limit(limit)
    ]


async def _finish(progress: Any, *, week: str) -> None:
    await progress.update_one(
        {"_id": week}, {"$set": {"finishedAt": datetime.datetime.now(datetime.UTC)}}
    )


async def _enqueue_batch(
    progress: Any,
    conn: redis.Redis,
    *,
    settings: RefreshSettings,
    week: str,
    state: dict[str, Any],
    users: list[str],
) -> None:
    """Enqueue one batch, then move the week's cursor past it."""
    number = int(state["batches"])
    # rq's client blocks; its job id makes a batch enqueued twice run once
    await asyncio.to_thread(
        jobs.enqueue_refresh,
        conn,
        settings=settings,
        week=week,
        number=number,
        user_ids=users,
        retry_intervals=settings.job_retry_intervals,
        timeout=settings.job_timeout_seconds,
    )
    # compare-and-set on the cursor: a second run at the same time cannot skip ahead
    await progress.update_one(
        {"_id": week, "after": state["after"]},
        {
            "$set": {"after": users[-1], "batches": number + 1},
            "$inc": {"users": len(users)},
        },
    )


async def run(settings: RefreshSettings) -> int:
    """The CronJob's entrypoint: enqueue this week's refresh (or finish it after a restart)."""
    mongo: Any = stores.mongo(settings, appname="music-refresh")
    try:
        db = mongo[settings.database_name(store.DATABASE)]
        week = week_of(datetime.datetime.now(datetime.UTC))
        state = await enqueue_week(db, settings=settings, week=week)
        log.info(
            "refresh %s: %d users in %d batches enqueued", week, state["users"], state["batches"]
        )
        return 0
    finally:
        mongo.close()
