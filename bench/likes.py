"""Likes benchmark: a storm of like/unlike events on a few hot posts, through the like-updater
and the like-batch-updater (each in its own process, as deployed).

20K `like.toggled` events from 200 people on 5 posts (random like/unlike, seq per person and
post), published with JetStream acks pipelined. Reported: events/s until both workers have
consumed everything and the counts are exact; the Mongo write operations each worker sent
(its `rhime_likes_mongo_writes` metric), against the goal of at most 1/20 of the events for the
count writes; and whether the final counts and persisted states equal the truth.

    .venv/bin/python bench/likes.py [--events 20000] [--users 200] [--posts 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import bson
from motor.motor_asyncio import AsyncIOMotorClient

from bench import components, targets
from rhime import events
from rhime.kit import bus as bus_module
from rhime.kit import metrics
from rhime.runtime import servers

WORKERS = {"like-updater": 28106, "like-batch-updater": 28107}


def scrape(name: str, metric: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{WORKERS[name]}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(metric + " ") or line.startswith(metric + "_total "):
                return float(line.split()[-1])
    return 0.0


def storm(count: int, users: int, posts: list[str]) -> tuple[list[events.LikeToggled], Any]:
    rnd = random.Random(42)
    seqs: dict[tuple[str, str], int] = {}
    final: dict[tuple[str, str], bool] = {}
    batch = []
    for n in range(count):
        user, post = f"user{rnd.randrange(users)}", rnd.choice(posts)
        seq = seqs[(user, post)] = seqs.get((user, post), 0) + 1
        liked = rnd.random() < 0.55
        final[(user, post)] = liked
        batch.append(
            events.LikeToggled(
                id=f"like.toggled:{n}",
                item_id=post,
                item_type="post",
                user_id=user,
                liked=liked,
                seq=seq,
            )
        )
    counts = {p: sum(1 for (u, q), v in final.items() if q == p and v) for p in posts}
    return batch, (counts, final)


async def run(args: argparse.Namespace, rt: servers.Runtime, logs: Path) -> None:
    namespace = "blikes" + secrets.token_hex(3)
    env = components.env(rt, namespace=namespace, secret=secrets.token_hex(24))
    procs = [components.start(n, port=p, env=env, logs=logs) for n, p in WORKERS.items()]
    try:
        while not all(components.ready(p) for p in WORKERS.values()):  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)
        posts = [str(bson.ObjectId()) for _ in range(args.posts)]
        batch, (truth, final) = storm(args.events, args.users, posts)
        bus = await bus_module.Bus.connect(
            url=rt.urls["nats"], name="bench", namespace=namespace, metrics=metrics.create()
        )
        mongo: Any = AsyncIOMotorClient(rt.urls["mongo"])
        db = mongo[f"{namespace}_likes"]
        began = time.perf_counter()
        await bus.publish_many(batch)
        published = time.perf_counter() - began

        async def exact() -> bool:
            found = {d["_id"]: d["count"] async for d in db["counts"].find({})}
            state = {(d["user_id"], d["item_id"]): d["liked"] async for d in db["likes"].find({})}
            return found == truth and state == final

        while not await exact():
            if time.perf_counter() - began > 300:
                targets.report([targets.holds("counts and states exact within 300 s", False)])
                raise SystemExit("counts did not converge")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - began
        writes = {n: scrape(n, "rhime_likes_mongo_writes") for n in WORKERS}
        await bus.nc.close()
        mongo.close()
    finally:
        for p in procs:
            p.terminate()
    print(f"{args.events} events, {args.users} people, {args.posts} posts")
    print(f"  published in {published:.2f} s; counts and states exact after {elapsed:.2f} s")
    print(f"  end-to-end {args.events / elapsed:10.0f} events/s")
    for name, n in writes.items():
        print(f"  Mongo writes by {name:20} {n:8.0f}  (1/{args.events / max(n, 1):.0f} of events)")
    print(f"  final counts exact: {truth}")
    # the goal: at most one Mongo write per 20 events in each worker
    targets.report(
        [
            targets.at_least("like events/s end to end", args.events / elapsed, 2000),
            *(
                targets.at_least(f"events per Mongo write, {n}", args.events / max(w, 1), 20)
                for n, w in writes.items()
            ),
            targets.holds("counts and states exact", True),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="4,000 events")
    args = parser.parse_args()
    if args.quick:
        args.events = 4_000
    with components.stores(("redis", "nats", "mongo")) as (rt, logs):
        asyncio.run(run(args, rt, logs))


if __name__ == "__main__":
    main()
