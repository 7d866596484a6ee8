"""rq jobs: the initial taste fetch on connect and the weekly refresh batches.

rq calls jobs by import path and is synchronous; the worker runs them in one thread with one
long-lived event loop and connections (`Runtime`), made current with a context variable, so
the core logic stays plain async functions shared with tests and the benchmark.
Job ids de-duplicate (rq allows no colons): `initial-{user}` while one is pending,
`refresh-{week}-{batch}` for the week.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

import grpc
import redis
import redis.asyncio as aioredis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from rhime import blocking
from rhime.graphview import client as graphview
from rhime.kit import stores
from rhime.kit.settings import Settings as KitSettings
from rhime.music import proximity, tastes
from rhime.music.spotify import api, tokens
from rhime.recommendation import announce, compute, fetch, follows, store
from rhime.recommendation.settings import WorkerSettings

log = logging.getLogger("rhime.recommendation.jobs")
T = TypeVar("T")

INITIAL_RANGE = "medium_term"
REFRESH_RANGE = "short_term"
_DONE = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED)
_WEEK_SECONDS = 8 * 24 * 3600


def queue_name(settings: KitSettings) -> str:
    return f"{settings.namespace}-music"


def connection(settings: KitSettings) -> redis.Redis:
    """A synchronous Redis connection as rq needs it (bytes, no decoding)."""
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)


def queue(settings: KitSettings, conn: redis.Redis) -> Queue:
    return Queue(queue_name(settings), connection=conn, serializer=JSONSerializer)


@dataclasses.dataclass(kw_only=True)
class Resources:
    settings: WorkerSettings
    db: Any
    redis: aioredis.Redis
    spotify: api.Client
    channel: grpc.aio.Channel | None


@contextlib.asynccontextmanager
async def resources(settings: WorkerSettings) -> AsyncIterator[Resources]:
    mongo: Any = stores.mongo(settings, appname="music-jobs")
    rds = stores.redis(settings)
    spotify = api.Client(settings)
    channel = graphview.channel(settings) if settings.use_graph_view else None
    try:
        yield Resources(
            settings=settings,
            db=mongo[settings.database_name(store.DATABASE)],
            redis=rds,
            spotify=spotify,
            channel=channel,
        )
    finally:
        if channel is not None:
            await channel.close(grace=None)
        await spotify.aclose()
        await rds.aclose()
        mongo.close()


async def sync_user(
    res: Resources, *, user_id: str, time_range: str, week: str | None = None
) -> int | None:
    """Fetch a user's taste, store and index it, and recompute their recommendations.
    Returns how many were stored, or None when the user is not (or no longer) connected.
    Safe to repeat: the result depends only on Spotify's answers and the stored state."""
    settings = res.settings
    try:
        token, _ = await tokens.access_token(
            res.db, res.redis, res.spotify, settings=settings, user_id=user_id
        )
    except (tokens.NotConnected, tokens.Revoked):
        return None

    async def get(call: api.Call) -> Any:
        nonlocal token
        try:
            return await api.web(res.spotify, settings=settings, token=token, call=call)
        except api.Unauthorized:
            # revoked or expired early: refresh once
            token, _ = await tokens.access_token(
                res.db,
                res.redis,
                res.spotify,
                settings=settings,
                user_id=user_id,
                force_refresh=True,
            )
            return await api.web(res.spotify, settings=settings, token=token, call=call)

    items = await fetch.top_items(get, time_range=time_range)
    if not await tokens.is_connected(res.db, user_id=user_id):
        return None  # disconnected while we fetched: keep nothing
    await tastes.save(res.db, user_id=user_id, items=items, time_range=time_range, week=week)
    followees = await follows.followees(res.channel, user_id=user_id)
    # people you may know: whom the people I follow follow (none for a newcomer)
    following, degree = await follows.following_of(res.channel, user_ids=followees)
    near = proximity.proximities(user=user_id, mine=followees, following=following, degree=degree)
    # never whom they follow, nor anyone of whom one blocks the other
    exclude = followees | await blocking.hidden(res.db, user_id=user_id)
    top = await compute.recommend(res.db, user_id=user_id, exclude=exclude, near=near)
    # the weekly refresh (`week`) tells of people new among the top; a first fetch does not
    await announce.remember(res.db, user_id=user_id, others=[o for o, _ in top], week=week)
    return len(top)


async def refresh_users(res: Resources, *, week: str, user_ids: Sequence[str]) -> dict[str, int]:
    """One weekly batch: each user's short-term taste, then their recommendations. Users
    already refreshed this week (a retried batch) are skipped."""
    done = {
        doc["_id"]
        async for doc in res.db[store.TASTES].find(
            {"_id": {"$in": list(user_ids)}, "week": week}, {"_id": 1}
        )
    }
    counts = {"refreshed": 0, "skipped": 0, "gone": 0}
    for user_id in user_ids:
        if user_id in done:
            counts["skipped"] += 1
            continue
        stored = await sync_user(res, user_id=user_id, time_range=REFRESH_RANGE, week=week)
        counts["gone" if stored is None else "refreshed"] += 1
    return counts


@dataclasses.dataclass(kw_only=True)
class Runtime:
    """A worker thread's event loop and connections, shared by the jobs it runs."""

    loop: asyncio.AbstractEventLoop
    res: Resources
    _exit: contextlib.AsyncExitStack

    @classmethod
    def open(cls, settings: WorkerSettings) -> Runtime:
        loop = asyncio.new_event_loop()
        stack = contextlib.AsyncExitStack()
        res = loop.run_until_complete(stack.enter_async_context(resources(settings)))
        return cls(loop=loop, res=res, _exit=stack)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self._exit.aclose())
        self.loop.close()


current: contextvars.ContextVar[Runtime] = contextvars.ContextVar("music_runtime")


def _runtime() -> Runtime:
    try:
        return current.get()
    except LookupError:
        raise RuntimeError("music jobs run inside the recommendation worker") from None


# --- the jobs rq runs -------------------------------------------------------------------


def initial_fetch(user_id: str) -> int | None:
    rt = _runtime()
    return rt.run(sync_user(rt.res, user_id=user_id, time_range=INITIAL_RANGE))


def refresh_batch(week: str, user_ids: list[str]) -> dict[str, int]:
    rt = _runtime()
    return rt.run(refresh_users(rt.res, week=week, user_ids=user_ids))


# --- enqueueing ---------------------------------------------------------------------------


def _retry(intervals: Sequence[int]) -> Retry | None:
    return Retry(max=len(intervals), interval=list(intervals)) if intervals else None


def _enqueue_unique(
    q: Queue,
    func: str,
    *,
    job_id: str,
    args: Sequence[Any],
    again_when_done: bool,
    retry: Retry | None,
    timeout: int,
    result_ttl: int,
) -> bool:
    """Enqueue unless a job with this id exists; with `again_when_done`, a finished or failed
    one is replaced. True if enqueued."""
    for _ in range(2):
        try:
            q.enqueue(
                func,
                *args,
                job_id=job_id,
                unique=True,
                retry=retry,
                job_timeout=timeout,
                result_ttl=result_ttl,
                failure_ttl=_WEEK_SECONDS,
            )
            return True
        except DuplicateJobError:
            if not again_when_done:
                return False
            try:
                job = Job.fetch(job_id, connection=q.connection, serializer=JSONSerializer)
            except NoSuchJobError:
                continue  # it just expired: try again
            if job.get_status() not in _DONE:
                return False
            job.delete()
    return False


def enqueue_initial(
    conn: redis.Redis,
    *,
    settings: KitSettings,
    user_id: str,
    retry_intervals: Sequence[int] = (30, 120, 600),
    timeout: int = 1800,
) -> bool:
    """The first fetch after a connection; de-duplicated while one is queued or running."""
    return _enqueue_unique(
        queue(settings, conn),
        "rhime.recommendation.jobs.initial_fetch",
        job_id=f"initial-{user_id}",
        args=[user_id],
        again_when_done=True,
        retry=_retry(retry_intervals),
        timeout=timeout,
        result_ttl=3600,
    )


def enqueue_refresh(
    conn: redis.Redis,
    *,
    settings: KitSettings,
    week: str,
    number: int,
    user_ids: Sequence[str],
    retry_intervals: Sequence[int] = (30, 120, 600),
    timeout: int = 1800,
) -> bool:
    """One weekly batch; de-duplicated for the whole week (the job stays for 8 days)."""
    return _enqueue_unique(
        queue(settings, conn),
        "rhime.recommendation.jobs.refresh_batch",
        job_id=f"refresh-{week}-{number}",
        args=[week, list(user_ids)],
        again_when_done=False,
        retry=_retry(retry_intervals),
        timeout=timeout,
        result_ttl=_WEEK_SECONDS,
    )


def cancel_initial(conn: redis.Redis, *, user_id: str) -> None:
    """Delete the user's initial fetch job whatever its state (queued, running, finished),
    from the queue and its registries: its id and arguments name the user."""
    try:
        job = Job.fetch(f"initial-{user_id}", connection=conn, serializer=JSONSerializer)
    except NoSuchJobError:
        return
    job.delete()
    Result.delete_all(job)
