"""The weekly refresh: batches enqueued with durable progress, resumed after a cut, repeated
each week, and run by the worker."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import httpx
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.recommendation import jobs, refresh, store, worker
from rhime.recommendation.settings import RefreshSettings, WorkerSettings
from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from rhime.spotify.settings import Settings as SpotifySettings
from tests.music_services.music_helpers import connect, listeners, oid
from tests.support import eventually


async def test_weekly_refresh_resumes_repeats_and_runs(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    port = servers.free_port()
    settings = music_settings(SpotifySettings, public_url=f"http://127.0.0.1:{port}")
    served = await serve(spotify_app.create(settings), port=port)
    users = []
    async with httpx.AsyncClient(base_url=served.url) as client:
        for listener in listeners(7, 5):
            user = oid()
            assert (await connect(client, user, listener=listener)).headers["location"] == "/"
            users.append(user)
    cron = music_settings(RefreshSettings, refresh_batch=2)
    mongo: Any = AsyncIOMotorClient(cron.mongo_url, tz_aware=True)
    db = mongo[cron.database_name(store.DATABASE)]
    conn = jobs.connection(cron)
    queue = jobs.queue(cron, conn)
    assert queue.count == 0  # the spotify service enqueues nothing: connecting is an event
    try:
        # a run cut short after one batch, then a restart: it resumes after the first batch
        state = await refresh.enqueue_week(db, settings=cron, week="2031-W05", max_batches=1)
        assert state["batches"] == 1
        assert state["after"] == sorted(users)[1]
        assert "finishedAt" not in state
        state = await refresh.enqueue_week(db, settings=cron, week="2031-W05")
        assert state["batches"] == 3
        assert state["users"] == 5
        assert state["finishedAt"]
        assert sorted(queue.job_ids) == [f"refresh-2031-W05-{n}" for n in range(3)]
        batches = [queue.fetch_job(job_id).args for job_id in sorted(queue.job_ids)]
        assert [u for _, ids in batches for u in ids] == sorted(users)

        # the same week again enqueues nothing; the next week does it all again
        await refresh.enqueue_week(db, settings=cron, week="2031-W05")
        assert queue.count == 3
        jobs.enqueue_refresh(conn, settings=cron, week="2031-W05", number=0, user_ids=users)
        assert queue.count == 3  # a batch enqueued twice runs once
        state = await refresh.enqueue_week(db, settings=cron, week="2031-W06")
        assert state["batches"] == 3
        assert queue.count == 6

        await serve(worker.create(music_settings(WorkerSettings)))

        async def refreshed() -> None:
            found = await db[store.TASTES].count_documents(
                {"_id": {"$in": users}, "week": "2031-W06", "timeRange": "short_term"}
            )
            assert found == 5
            assert queue.count == 0

        await eventually(refreshed, timeout=60)
        assert await db[store.RECOMMENDATIONS].count_documents({"userId": users[0]}) >= 4
    finally:
        conn.close()
        mongo.close()


def test_week_ids() -> None:
    assert refresh.week_of(datetime.datetime(2025, 1, 6, tzinfo=datetime.UTC)) == "2025-W02"
    assert refresh.week_of(datetime.datetime(2024, 12, 30, tzinfo=datetime.UTC)) == "2025-W01"
