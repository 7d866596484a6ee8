"""What Rhime relies on from the MongoDB-wire server (FerretDB's wrapper must provide it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import DESCENDING, IndexModel, UpdateOne

from rhime.kit import app


async def test_single_document_updates_are_atomic(make_settings: Callable[..., Any]) -> None:
    settings = make_settings()
    client: Any = AsyncIOMotorClient(settings.mongo_url)
    coll = client[settings.database_name("atomic")]["counters"]
    await coll.insert_one({"_id": "c", "n": 0, "v": 0})
    await asyncio.gather(*(coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(200)))
    results = await asyncio.gather(
        *(coll.update_one({"_id": "c", "v": 0}, {"$set": {"v": i + 1}}) for i in range(50))
    )
    doc = await coll.find_one({"_id": "c"})
    assert doc["n"] == 200
    assert sum(r.modified_count for r in results) == 1  # compare-and-set wins once
    client.close()


async def test_bulk_updates_of_many_statements_complete(make_settings: Callable[..., Any]) -> None:
    """FerretDB kept each statement's query open until the command ended; past 100 statements
    its connection pool ran dry and the command hung."""
    settings = make_settings()
    client: Any = AsyncIOMotorClient(settings.mongo_url)
    coll = client[settings.database_name("bulk")]["items"]
    ops = [UpdateOne({"_id": i}, {"$inc": {"n": 1}}, upsert=True) for i in range(250)]
    await asyncio.wait_for(coll.bulk_write(ops, ordered=False), 60)
    await asyncio.wait_for(coll.bulk_write(ops, ordered=False), 60)
    assert await coll.count_documents({"n": 2}) == 250
    client.close()


async def test_a_restart_finds_its_indexes_in_place(make_settings: Callable[..., Any]) -> None:
    """Every component start ensures its indexes; on a restart they all exist already."""
    settings = make_settings()
    client: Any = AsyncIOMotorClient(settings.mongo_url)
    database = client[settings.database_name("indexes")]
    indexes = {
        "posts": [
            IndexModel([("user_id", 1), ("_id", DESCENDING)]),
            IndexModel([("_outbox.id", 1)]),
        ]
    }
    for _ in range(3):
        await asyncio.wait_for(app.ensure_indexes(database, indexes), 30)
    names = {index["name"] async for index in database["posts"].list_indexes()}
    assert names == {"_id_", "user_id_1__id_-1", "_outbox.id_1"}
    client.close()
