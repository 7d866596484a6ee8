"""Finding people: one page of `GET /api/users/search` over many profiles, from the index the
user service keeps (a Redis sorted set read by ZRANGEBYLEX, then an `_id` lookup per person),
beside the same prefix asked of the store as an `_id` range over a collection of search keys
(`{_id: {$gte: q, $lt: q + "\\uffff"}}`), which FerretDB 1.x on SQLite answers by a scan.

    .venv/bin/python bench/people_search.py [--profiles 20000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import bson
from motor.motor_asyncio import AsyncIOMotorClient

from bench import components, targets
from rhime.kit import app as kit_app
from rhime.kit import metrics, stores
from rhime.kit.settings import Settings
from rhime.runtime import servers
from rhime.user import names, profiles, search

# One page: a Redis read and 20 `_id` lookups in parallel, whatever the number of profiles.
TARGET_P50_MS = 100.0
QUERIES = ("sun", "otter", "qui", "u1", "u12", "u123", "brisk lynx", "zz")


async def populate(kit: kit_app.Kit, *, count: int) -> None:
    """Profiles as user.created makes them (random names), indexed as the service does; and
    their search keys as `_id`s of a collection, for the comparison."""
    rng = random.Random(7)
    docs = []
    for n in range(count):
        first, last = names.random_name(rng)
        user_id = str(bson.ObjectId())
        docs.append({"_id": user_id, "user_name": f"u{n}", "first_name": first, "last_name": last})
    for start in range(0, count, 1000):
        await kit.database[profiles.PROFILES].insert_many(docs[start : start + 1000])
    await search.rebuild(kit, collection=profiles.PROFILES)
    keys = [{"_id": m} for d in docs for m in search.members(d["_id"], search.terms(d))]
    for start in range(0, len(keys), 2000):
        await kit.database["search_keys"].insert_many(keys[start : start + 2000])


async def timed(call: Callable[[], Awaitable[Any]], rounds: int) -> list[float]:
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        await call()
        took.append((time.perf_counter() - began) * 1000)
    return took


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.99) - 1)]


async def run(args: argparse.Namespace, rt: servers.Runtime) -> list[targets.Row]:
    settings = Settings(
        namespace="bsearch" + bson.ObjectId().binary.hex()[-6:],
        mongo_url=rt.urls["mongo"],
        redis_url=rt.urls["redis"],
        nats_url="nats://127.0.0.1:1",  # not used
        internal_secret="bench-internal-secret-0123456789-abcdefgh",
    )
    kit = kit_app.Kit(
        settings=settings,
        metrics=metrics.create(),
        database_name=settings.database_name("user"),
        uses_redis=True,
        uses_nats=False,
    )
    kit.mongo = AsyncIOMotorClient(rt.urls["mongo"])
    kit.redis = stores.redis(settings)
    try:
        began = time.perf_counter()
        await populate(kit, count=args.profiles)
        print(f"populated {args.profiles} profiles in {time.perf_counter() - began:.0f} s")
        index: list[float] = []
        scans: list[float] = []
        for q in QUERIES:
            page, _ = await search.find(kit, q=q, after=None, collection=profiles.PROFILES)

            async def from_index(q: str = q) -> None:
                await search.find(kit, q=q, after=None, collection=profiles.PROFILES)

            async def from_store(q: str = q) -> None:
                found = kit.database["search_keys"].find({"_id": {"$gte": q, "$lt": q + "\uffff"}})
                await found.sort("_id", 1).limit(40).to_list(40)

            mine = await timed(from_index, args.rounds)
            theirs = await timed(from_store, max(1, args.rounds // 10))
            index += mine
            scans += theirs
            print(
                f"  {q!r:14} {len(page):2} people  index p50 {statistics.median(mine):7.1f} ms"
                f"  store range p50 {statistics.median(theirs):7.1f} ms"
            )
    finally:
        await kit.redis.aclose()
        kit.mongo.close()
    print(f"one page, {args.profiles} profiles:")
    print(f"  index (ZRANGEBYLEX + _id lookups)  p50 {statistics.median(index):7.1f} ms", end="")
    print(f"  p99 {p99(index):7.1f} ms")
    print(f"  store _id range on search keys     p50 {statistics.median(scans):7.1f} ms")
    return [
        targets.at_most(
            "search page p50 from the index", statistics.median(index), TARGET_P50_MS, unit=" ms"
        ),
        targets.holds("the index beats an _id range in the store", p99(index) < min(scans)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5,000 profiles, 20 rounds")
    args = parser.parse_args()
    if args.quick:
        args.profiles, args.rounds = 5_000, 20
    with components.stores(("redis", "mongo")) as (rt, _):
        rows = asyncio.run(run(args, rt))
    targets.report(rows)


if __name__ == "__main__":
    main()
