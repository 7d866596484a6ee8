""" "Not now" hides a recommendation for a while (`RHIME_DISMISS_DAYS`), not for ever."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime.recommendation import app as rec_app
from rhime.recommendation import store
from rhime.recommendation.settings import Settings
from tests.music_services.music_helpers import oid
from tests.support import auth_headers

EXPLANATION = {"commonArtists": [], "commonTracks": [], "commonGenres": [], "breakdown": {}}


@pytest.fixture
async def service(
    music_settings: Callable[..., Any], serve: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    served = await serve(rec_app.create(music_settings(Settings, dismiss_days=7)))
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield client, served.app.state.kit


async def matched(db: Any, me: str, others: list[str]) -> None:
    """Stored matches with people who are connected, as the worker leaves them."""
    for rank, other in enumerate(others):
        await db[store.TOKENS].insert_one({"_id": other, "connected": True})
        await db[store.RECOMMENDATIONS].insert_one(
            {
                "_id": store.recommendation_id(me, other),
                "userId": me,
                "otherId": other,
                "similarity": 0.9 - rank / 10,
                "dismissed": False,
                "explanation": EXPLANATION,
            }
        )


async def shown(client: httpx.AsyncClient, me: str) -> list[str]:
    r = await client.get("/api/recommendations", headers=auth_headers(me))
    assert r.status_code == 200, r.text
    return [rec["userId"] for rec in r.json()["recommendations"]]


async def test_not_now_hides_for_the_set_period_then_shows_again(
    service: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = service
    db = kit.database
    me, bo, cy, never = oid(), oid(), oid(), oid()
    await matched(db, me, [bo, cy])
    assert await shown(client, me) == [bo, cy]

    # `never` connected Spotify but was dismissed before any match with them was computed
    await db[store.TOKENS].insert_one({"_id": never, "connected": True})
    before = datetime.datetime.now(datetime.UTC)
    for other in (bo, never):
        r = await client.post(f"/api/recommendations/{other}/dismiss", headers=auth_headers(me))
        assert r.status_code == 204
    assert await shown(client, me) == [cy]
    doc = await db[store.RECOMMENDATIONS].find_one({"_id": store.recommendation_id(me, bo)})
    until = doc["dismissedUntil"].replace(tzinfo=datetime.UTC)
    assert datetime.timedelta(days=7) <= until - before < datetime.timedelta(days=7, minutes=1)

    # the period ends: shown again, in its place; a never-computed dismissal is dropped
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    await db[store.RECOMMENDATIONS].update_many(
        {"userId": me, "dismissed": True}, {"$set": {"dismissedUntil": past}}
    )
    assert await shown(client, me) == [bo, cy]
    doc = await db[store.RECOMMENDATIONS].find_one({"_id": store.recommendation_id(me, bo)})
    assert doc["dismissed"] is False
    assert "dismissedUntil" not in doc
    gone = await db[store.RECOMMENDATIONS].find_one({"_id": store.recommendation_id(me, never)})
    assert gone is None


async def test_an_older_dismissal_without_an_end_stays(
    service: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = service
    me, bo = oid(), oid()
    await matched(kit.database, me, [bo])
    await kit.database[store.RECOMMENDATIONS].update_one(
        {"_id": store.recommendation_id(me, bo)}, {"$set": {"dismissed": True}}
    )
    assert await shown(client, me) == []
