"""Follows benchmark: a popular account gains N followers through the API, 64 at a time.

user-graph runs in its own process (`rhime serve user-graph`), as deployed, over a `graph`
database that already holds `--existing` people and their edges (a realistic collection size:
a query that scans shows up). Reported: follows/s until every PUT returned 200, then the
follower and following counts checked against the truth, and the same for unfollows.

    .venv/bin/python bench/follows.py [--followers 1000] [--existing 5000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import bson
from motor.motor_asyncio import AsyncIOMotorClient

from bench import components, targets
from rhime.graph import edges
from rhime.kit import identity
from rhime.runtime import servers

PORT = 28109
TARGET = 500.0  # follows/s through the API


async def populate(db: Any, *, people: list[str], existing: int) -> None:
    """`existing` people with an edge each, written directly: the collections' size is what
    matters, not how they got there."""
    nodes = [
        {"_id": u, "user_name": f"u{n}", "followers": 0, "following": 0}
        for n, u in enumerate(people)
    ]
    await db[edges.USERS].insert_many(nodes)
    others = [str(bson.ObjectId()) for _ in range(existing)]
    await db[edges.USERS].insert_many(
        [{"_id": u, "user_name": "x", "followers": 1, "following": 1} for u in others]
    )
    pairs = zip(others, others[1:] + others[:1], strict=True)
    await db[edges.EDGES].insert_many(
        [
            {
                "_id": edges.edge_id(a, b),
                "follower": a,
                "followee": b,
                "active": True,
                "version": 1,
                "counted": 1,
            }
            for a, b in pairs
        ]
    )


async def storm(url: str, secret: str, *, author: str, followers: list[str], method: str) -> float:
    """Seconds until every follower's PUT (or DELETE) on the author returned 200."""
    sem = asyncio.Semaphore(64)

    def as_user(user_id: str) -> dict[str, str]:
        token = identity.encode(identity.Identity(user_id=user_id, spotify=True), secret=secret)
        return {identity.HEADER: token}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:

        async def one(user_id: str) -> None:
            async with sem:
                for _ in range(200):
                    async with http.request(
                        method, f"{url}/api/graph/following/{author}", headers=as_user(user_id)
                    ) as resp:
                        if resp.status == 200:
                            return
                    await asyncio.sleep(0.1)
                raise SystemExit(f"{method} failed")

        began = time.perf_counter()
        await asyncio.gather(*(one(u) for u in followers))
        return time.perf_counter() - began


async def counts(url: str, secret: str, user_id: str) -> dict[str, int]:
    token = identity.encode(identity.Identity(user_id=user_id, spotify=True), secret=secret)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/api/graph/users/{user_id}/counts", headers={identity.HEADER: token}
        ) as resp,
    ):
        found: dict[str, int] = await resp.json()
        return found


async def run(args: argparse.Namespace, rt: servers.Runtime, logs: Path) -> list[targets.Row]:
    namespace = "bfollow" + secrets.token_hex(3)
    secret = secrets.token_hex(24)
    env = components.env(rt, namespace=namespace, secret=secret)
    author = str(bson.ObjectId())
    followers = [str(bson.ObjectId()) for _ in range(args.followers)]
    mongo: Any = AsyncIOMotorClient(rt.urls["mongo"])
    await populate(mongo[f"{namespace}_graph"], people=[author, *followers], existing=args.existing)
    print(f"populated {args.existing} other edges", flush=True)
    proc = components.start("user-graph", port=PORT, env=env, logs=logs)
    url = f"http://127.0.0.1:{PORT}"
    try:
        while not components.ready(PORT):  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)
        print("user-graph ready; following ...", flush=True)
        followed = await storm(url, secret, author=author, followers=followers, method="PUT")
        after_follow = await counts(url, secret, author)
        first = await counts(url, secret, followers[0])
        half = followers[: len(followers) // 2]
        unfollowed = await storm(url, secret, author=author, followers=half, method="DELETE")
        after_unfollow = await counts(url, secret, author)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mongo.close()
    exact = (
        after_follow["followers"] == len(followers)
        and first["following"] == 1
        and after_unfollow["followers"] == len(followers) - len(half)
    )
    print(f"{len(followers)} follows of one author, 64 at a time, {args.existing} other edges")
    print(f"  follows   {followed:6.2f} s  {len(followers) / followed:8.0f} follows/s")
    print(f"  unfollows {unfollowed:6.2f} s  {len(half) / unfollowed:8.0f} unfollows/s")
    print(f"  counts after: {after_follow} then {after_unfollow}; exact: {exact}")
    return [
        targets.at_least("follows/s through the API", len(followers) / followed, TARGET),
        targets.at_least("unfollows/s through the API", len(half) / unfollowed, TARGET),
        targets.holds("follower and following counts exact", exact),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--existing", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="1,000 followers, 2,000 others")
    args = parser.parse_args()
    if args.quick:
        args.existing = 2000
    with components.stores(("redis", "nats", "mongo")) as (rt, logs):
        rows = asyncio.run(run(args, rt, logs))
    targets.report(rows)


if __name__ == "__main__":
    main()
