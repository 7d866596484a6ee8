"""recommendation-worker: a kit app (health, readiness, metrics) running an rq worker and
rq's scheduler in threads.

rq installs signal handlers and forks by default; neither works in a thread beside the web
server, so the worker runs jobs in its own thread (SimpleWorker, timer-based timeouts) and
the scheduler (which moves retries and delayed jobs to the queue when due) runs its loop in
another. Replicas share the queue; rq's scheduler lock lets one replica schedule at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import redis
from fastapi import FastAPI
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from rhime.kit import app as kit_app
from rhime.kit import metrics as metrics_mod
from rhime.recommendation import jobs, store
from rhime.recommendation.settings import WorkerSettings

log = logging.getLogger("rhime.recommendation.worker")


QUEUE_LABEL = "music"  # the queue's name without the namespace, for bounded labels


class _ThreadWorker(SimpleWorker):
    death_penalty_class = TimerDeathPenalty
    metrics: metrics_mod.Metrics | None = None

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """Run the job and observe `rhime_job_seconds` (by the job's function name, bounded;
        its arguments name users and stay out of labels)."""
        started = time.perf_counter()
        ok = super().perform_job(job, queue)
        if self.metrics is not None:
            name = (job.func_name or "unknown").rsplit(".", 1)[-1]
            self.metrics.jobs.labels(name, "ok" if ok else "failed").observe(
                time.perf_counter() - started
            )
        return ok

    def _install_signal_handlers(self) -> None:
        pass  # the app stops this worker, not signals

    @property
    def dequeue_timeout(self) -> int:
        return 1

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        # rq's idle loop only ends on a job or a signal: wake every second to notice a stop
        while not self._stop_requested:
            found = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=1)
            if found is not None:
                return found
        return None

    def subscribe(self) -> None:
        # rq's remote-command listener blocks a thread for up to a minute on shutdown; this
        # worker is stopped by its app, so it listens for no commands
        pass

    def unsubscribe(self) -> None:
        pass

    def stop_soon(self) -> None:
        self._stop_requested = True


class _ThreadScheduler(RQScheduler):
    def _install_signal_handlers(self) -> None:
        pass


class Threads:
    """The worker and scheduler threads of one process."""

    def __init__(self, settings: WorkerSettings, *, metrics: metrics_mod.Metrics) -> None:
        self.settings = settings
        self.conn = jobs.connection(settings)
        self.worker = _ThreadWorker(
            [jobs.queue(settings, self.conn)], connection=self.conn, serializer=JSONSerializer
        )
        self.worker.metrics = metrics
        self.scheduler = _ThreadScheduler(
            [jobs.queue_name(settings)], connection=self.conn, serializer=JSONSerializer
        )
        self.threads = [
            threading.Thread(target=self._work, name="rq-worker", daemon=True),
            threading.Thread(target=self._schedule, name="rq-scheduler", daemon=True),
        ]

    def _work(self) -> None:
        runtime = jobs.Runtime.open(self.settings)
        jobs.current.set(runtime)
        try:
            self.worker.work(logging_level=self.settings.log_level)
        finally:
            runtime.close()

    def _schedule(self) -> None:
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        self.scheduler.work()  # type: ignore[no-untyped-call]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.worker.stop_soon()
        self.scheduler.request_stop()  # type: ignore[no-untyped-call]
        for thread in self.threads:
            thread.join(timeout=60)
        self.conn.close()


def depth(settings: WorkerSettings, conn: redis.Redis) -> dict[str, int]:
    """Jobs per state in the queue and its registries (blocking: run it in a thread)."""
    q = jobs.queue(settings, conn)
    return {
        "queued": q.count,
        "scheduled": q.scheduled_job_registry.count,
        "started": q.started_job_registry.count,
        "failed": q.failed_job_registry.count,
    }


async def watch_queue(kit: kit_app.Kit, settings: WorkerSettings) -> None:
    """Keep `rhime_job_queue_depth` current: a growing queue means jobs outpace the workers."""
    conn = jobs.connection(settings)
    try:
        while True:
            for state, count in (await asyncio.to_thread(depth, settings, conn)).items():
                kit.metrics.job_queue.labels(QUEUE_LABEL, state).set(count)
            await asyncio.sleep(settings.queue_watch_seconds)
    finally:
        conn.close()


def create(settings: WorkerSettings) -> FastAPI:
    async def run_worker(kit: kit_app.Kit) -> None:
        threads = Threads(settings, metrics=kit.metrics)
        threads.start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(threads.stop)

    async def queue_depth(kit: kit_app.Kit) -> None:
        await watch_queue(kit, settings)

    indexes: Any = store.INDEXES
    return kit_app.create_app(
        settings,
        title="recommendation-worker",
        database=store.DATABASE,
        nats=False,
        indexes=indexes,
        tasks=[run_worker, queue_depth],
    )
