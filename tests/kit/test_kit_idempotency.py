from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient

from rhime.kit import idempotency


async def test_apply_once_counts_each_event_once(make_settings: Callable[..., Any]) -> None:
    settings = make_settings()
    client = AsyncIOMotorClient(settings.mongo_url)
    counts = client[settings.database_name("idem")]["counts"]
    ids = [f"e{n}" for n in range(30)]
    deliveries = ids * 3  # every event delivered three times, concurrently
    results = await asyncio.gather(
        *(
            idempotency.apply_once(counts, "item", {"$inc": {"n": 1}}, event_id=e)
            for e in deliveries
        )
    )
    assert sum(results) == 30
    doc = await counts.find_one({"_id": "item"})
    assert doc["n"] == 30
    assert await idempotency.apply_once(counts, "item", {"$inc": {"n": 1}}, event_id="e5") is False
    assert (await counts.find_one({"_id": "item"}))["n"] == 30
    client.close()
