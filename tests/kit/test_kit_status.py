"""`rhime status`: parsing a kit app's real `/metrics` text, rates between two scrapes, and
the table of a platform recorded as `rhime up` records it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import errors
from rhime.likes import batch, updater
from rhime.runtime import status
from tests.support import eventually


def app_with_routes(settings: Any) -> Any:
    router = APIRouter()

    @router.get("/fine/{n}")
    async def fine(n: int) -> dict[str, int]:
        return {"n": n}

    @router.get("/broken")
    async def broken() -> None:
        raise errors.ApiError(503, errors.message(503))

    return kit_app.create_app(settings, title="status", routers=[router], redis=False, nats=False)


async def test_rates_between_two_scrapes_of_a_kit_app(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    served = await serve(app_with_routes(make_settings(component="status")))
    kit: kit_app.Kit = served.app.state.kit
    async with httpx.AsyncClient(base_url=served.url) as client:
        before = status.parse((await client.get("/metrics")).text)
        for n in range(10):
            assert (await client.get(f"/fine/{n}")).status_code == 200
        for _ in range(2):
            assert (await client.get("/broken")).status_code == 503
        await client.get("/healthz")  # probes and scrapes are not traffic
        kit.metrics.consumer_pending.labels("status-a").set(5)
        kit.metrics.consumer_pending.labels("status-b").set(2)
        after = status.parse((await client.get("/metrics")).text)

    assert before.pending is None  # consumes nothing yet
    assert (after.requests - before.requests, after.errors - before.errors) == (12, 2)
    assert after.pending == 7
    rps, errors_per_s, p99 = status.rates(before, after, 2.0)
    assert (rps, errors_per_s) == (6.0, 1.0)
    assert p99 is not None
    assert 0 < p99 <= 5.0  # the largest finite bucket

    row = status.row("status", 8000, before, after, 2.0)
    assert row.state == "up"
    assert row.rps == 6.0
    assert row.pending == 7


def test_quantile_interpolates_within_the_bucket() -> None:
    # 100 observations: 90 under 10 ms, 10 between 10 and 100 ms
    buckets = [(0.01, 90.0), (0.1, 100.0), (float("inf"), 100.0)]
    # rank 99 is the 9th of the 10 in (0.01, 0.1]
    assert status.quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 9 / 10)
    assert status.quantile(0.5, buckets) == pytest.approx(0.01 * 50 / 90)
    # past the largest finite bound all that is known is that bound
    assert status.quantile(0.99, [(0.01, 1.0), (float("inf"), 100.0)]) == 0.01
    assert status.quantile(0.99, [(0.01, 0.0), (float("inf"), 0.0)]) is None
    assert status.quantile(0.99, []) is None


def test_a_restarted_component_is_read_from_zero() -> None:
    before = status.Scrape(requests=500, errors=5, buckets=((float("inf"), 500.0),), pending=0)
    after = status.Scrape(requests=20, errors=1, buckets=((float("inf"), 20.0),), pending=3)
    rps, errors_per_s, _ = status.rates(before, after, 10.0)
    assert (rps, errors_per_s) == (2.0, 0.1)


async def test_once_prints_a_row_per_recorded_component(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    served = await serve(app_with_routes(make_settings(component="status")))
    assert status.run(data=tmp_path, interval=0.01, once=True) == 1  # nothing recorded
    status.record(
        tmp_path,
        ports={"status": served.port, "user-graph-view": 8110, "gone": 1},
        kinds={"status": "http", "user-graph-view": "grpc", "gone": "http"},
    )
    printed: list[str] = []
    # scraping in a thread: the app answers from the test's loop meanwhile
    code = await asyncio.to_thread(
        status.run, data=tmp_path, interval=0.2, once=True, out=printed.append
    )
    assert code == 0
    [text] = printed
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:-1]}
    assert rows["status"][2] == "up"
    assert rows["status"][3] == "0.0"  # no requests in between
    assert rows["user-graph-view"][2:] == ["no", "metrics", "-", "-", "-", "-"]
    assert rows["gone"][2:] == ["down", "-", "-", "-", "-"]


def test_a_state_file_left_by_a_stopped_platform_is_ignored(tmp_path: Path) -> None:
    status.record(tmp_path, ports={"auth": 8101}, kinds={"auth": "http"})
    assert status.load(tmp_path) is not None
    path = tmp_path / status.STATE_FILE
    state = path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999')
    path.write_text(state)
    assert status.load(tmp_path) is None


async def test_the_like_workers_report_their_consumer_lag(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    """Their batch consumers are their own (not the kit's): they report lag as the kit's do,
    so `rhime status` has a lag for them too."""
    for worker, name in ((updater, "like-updater"), (batch, "like-batch-updater")):
        served = await serve(worker.create(make_settings(worker.Settings, component=name)))

        async def reported(url: str = served.url) -> None:
            async with httpx.AsyncClient(base_url=url) as client:
                assert status.parse((await client.get("/metrics")).text).pending == 0

        await eventually(reported)
