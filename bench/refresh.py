"""Weekly refresh throughput through the real worker code, with recommendation quality.

    .venv/bin/python -P bench/refresh.py [--users N] [--workers W] [--quick]

Starts Redis, a MongoDB-wire server (FerretDB unless MONGODB_URL or mongod) and the fake
Spotify; connects N fake listeners (tokens stored as the spotify service stores them); then
runs two weekly refreshes (the first fills an empty database, the second is the steady
state): music-refresh's enqueueing, then W rq worker threads as recommendation-worker runs
them. Prints users per second and precision@10 / hit-rate@10 of the stored recommendations
against the fake population's planted communities (chance is 1/communities).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography.fernet import Fernet
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.kit import metrics
from rhime.music import evaluation as ev
from rhime.music import population as pop
from rhime.music.spotify import api, tokens
from rhime.recommendation import jobs, refresh, store, worker
from rhime.recommendation.settings import RefreshSettings, WorkerSettings
from rhime.runtime import servers

CLIENT = ("rhime-bench", "rhime-bench-secret")
SPEC = pop.PopulationSpec(seed=1, users=1000, communities=10)  # the fake's defaults


def user_of(listener: int) -> str:
    return f"{listener:024x}"


async def connect_all(settings: WorkerSettings, db: Any, listeners: Sequence[int]) -> None:
    async with httpx.AsyncClient() as browser, api.Client(settings) as spotify:
        for listener in listeners:
            query = urlencode(
                {
                    "client_id": CLIENT[0],
                    "response_type": "code",
                    "redirect_uri": settings.redirect_uri,
                    "scope": api.SCOPE,
                    "login_hint": listener,
                }
            )
            consent = await browser.get(f"{settings.spotify_accounts_url}/authorize?{query}")
            code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
            await tokens.exchange(
                db, spotify, settings=settings, user_id=user_of(listener), code=code
            )


async def quality(db: Any, listeners: Sequence[int]) -> tuple[float, float]:
    index = {user_of(listener): listener for listener in listeners}
    recommendations = {}
    for user, listener in index.items():
        cursor = (
            db[store.RECOMMENDATIONS]
            .find({"userId": user, "dismissed": False}, {"otherId": 1})
            .sort([("similarity", -1), ("otherId", 1)])
            .limit(10)
        )
        recommendations[listener] = [index[d["otherId"]] async for d in cursor]
    communities = [pop.community_of(SPEC, i) for i in range(SPEC.users)]
    return ev.score(communities=communities, recommendations=recommendations, k=10)


def run_workers(settings: WorkerSettings, count: int, queue: Any) -> None:
    threads = [worker.Threads(settings, metrics=metrics.create()) for _ in range(count)]
    for t in threads:
        t.start()
    try:
        while queue.count or queue.started_job_registry.count:
            time.sleep(0.05)
    finally:
        for t in threads:
            t.stop()


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="40 users")
    args = parser.parse_args(argv)
    users = 40 if args.quick else args.users
    with tempfile.TemporaryDirectory() as tmp:
        runtime = servers.Runtime(directory=Path(tmp), names=("redis", "mongo", "spotify"))
        runtime.servers["spotify"].env = {
            "RHIME_FAKE_SPOTIFY_CLIENT_ID": CLIENT[0],
            "RHIME_FAKE_SPOTIFY_CLIENT_SECRET": CLIENT[1],
        }
        runtime.start()
        try:
            common: dict[str, Any] = {
                "namespace": "bench",
                "mongo_url": runtime.urls["mongo"],
                "redis_url": runtime.urls["redis"],
                "internal_secret": secrets.token_urlsafe(32),
                "log_level": "WARNING",
            }
            settings = WorkerSettings(
                **common,
                spotify_client_id=CLIENT[0],
                spotify_client_secret=CLIENT[1],
                spotify_accounts_url=runtime.urls["spotify"],
                spotify_api_url=runtime.urls["spotify"],
                encryption_key=Fernet.generate_key().decode(),
                use_graph_view=False,
            )
            cron = RefreshSettings(**common, refresh_batch=20)
            mongo: Any = AsyncIOMotorClient(settings.mongo_url, tz_aware=True)
            db = mongo[settings.database_name(store.DATABASE)]
            for name, models in store.INDEXES.items():
                await db[name].create_indexes(list(models))
            listeners = list(range(users))
            started = time.perf_counter()
            await connect_all(settings, db, listeners)
            print(f"connected {users} listeners in {time.perf_counter() - started:.1f}s")
            conn = jobs.connection(settings)
            queue = jobs.queue(settings, conn)
            print(
                f"{'week':>8}  {'users':>5}  {'enqueue s':>9}  {'refresh s':>9}  "
                f"{'users/s':>7}  {'prec@10':>7}  {'hit@10':>6}"
            )
            for week in ("2031-W01", "2031-W02"):
                started = time.perf_counter()
                state = await refresh.enqueue_week(db, settings=cron, week=week)
                enqueued = time.perf_counter() - started
                started = time.perf_counter()
                await asyncio.to_thread(run_workers, settings, args.workers, queue)
                took = time.perf_counter() - started
                precision, hit_rate = await quality(db, listeners)
                print(
                    f"{week:>8}  {state['users']:>5}  {enqueued:>9.2f}  {took:>9.1f}  "
                    f"{state['users'] / took:>7.1f}  {precision:>7.3f}  {hit_rate:>6.3f}"
                )
            print(
                f"({args.workers} worker threads, batches of 20, chance precision "
                f"{1 / SPEC.communities:.2f})"
            )
            conn.close()
            mongo.close()
        finally:
            runtime.stop()


if __name__ == "__main__":
    asyncio.run(main())
