"""The weekly refresh tells people of someone new among their recommendations, through the
gateway on a platform of its own (the refresh covers everyone connected): the music-refresh
CronJob run as Kubernetes would run it, the worker refreshing, the recommendation component
relaying `user.recommended`, the notification component telling — never of someone blocked,
and never of someone already recommended to them."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from rhime.apiclient import Session
from rhime.runtime import local
from tests.journey.test_journey import eventually, newcomer


async def _recommendation_notes(session: Session) -> list[list[str]]:
    body = await session.request("GET", "/api/notifications")
    return [n["actors"] for n in body["notifications"] if n["kind"] == "recommendation"]


async def _run_refresh(platform: local.Platform) -> None:
    """`rhime serve music-refresh` with the worker's stores (the cron only enqueues)."""
    env = {**os.environ, **platform.process("recommendation-worker").env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rhime", "serve", "music-refresh", env=env
    )
    assert await asyncio.wait_for(proc.wait(), timeout=60) == 0


@pytest.mark.slow
async def test_the_weekly_refresh_tells_of_a_new_match(fresh_platform: local.Platform) -> None:
    platform = fresh_platform
    ana = await newcomer(platform, "noticeana")
    sessions = [ana]
    try:
        # Alone when her first computation ran: nobody was recommended to her by it.
        async def tasted() -> bool:
            r = await ana.http.get(f"/api/spotify/users/{ana.user_id}/top/artists")
            return r.status_code == 200  # 404 until her taste is stored

        await eventually(tasted, bool)
        await asyncio.sleep(1.0)  # her computation follows her taste by milliseconds
        bo = await newcomer(platform, "noticebo")
        cy = await newcomer(platform, "noticecy")
        sessions += [bo, cy]
        await cy.block(ana.user_id)

        async def recommended(session: Session) -> list[str]:
            body = await session.request("GET", "/api/recommendations")
            return [r["userId"] for r in body["recommendations"]]

        # Bo's and Cy's first computations list Ana for Bo (and Bo for Ana, both ways).
        await eventually(lambda: recommended(bo), lambda ids: ana.user_id in ids)
        await eventually(lambda: recommended(cy), lambda ids: bo.user_id in ids)
        assert await _recommendation_notes(ana) == []

        await _run_refresh(platform)
        found = await eventually(lambda: _recommendation_notes(ana), bool, timeout=90)
        assert found == [[bo.user_id]]  # never Cy, who blocks her
        # Bo had Ana from his first computation: she is no news to him; Cy never hears of her
        for session in (bo, cy):
            assert all(ana.user_id not in actors for actors in await _recommendation_notes(session))
    finally:
        for session in sessions:
            await session.close()
