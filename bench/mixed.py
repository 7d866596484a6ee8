"""A mixed social workload through the gateway, as a newcomer's platform meets it: the whole
platform as `rhime up` runs it, the default seed (40 people), then signed-in clients for a
while, each request drawn from the mix of the DeathStarBench social network: 60% the home
timeline, 30% a person's posts, 10% a new post. Prints throughput and latency per kind
beside the targets.

    .venv/bin/python bench/mixed.py [--clients 32] [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import targets
from rhime.apiclient import Session
from rhime.runtime import local, seed, servers

KINDS = (("home", 0.6), ("person", 0.3), ("post", 0.1))
TARGET_RPS = 300
TARGET_P99_MS = 250


def _kind(rng: random.Random) -> str:
    draw = rng.random()
    for kind, share in KINDS:
        if draw < share:
            return kind
        draw -= share
    return KINDS[-1][0]


async def _client(
    person: Session,
    *,
    people: list[str],
    tracks: list[dict[str, Any]],
    until: float,
    rng: random.Random,
    latencies: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    while time.monotonic() < until:
        kind = _kind(rng)
        began = time.perf_counter()
        if kind == "home":
            response = await person.http.get("/api/feed")
        elif kind == "person":
            response = await person.http.get(f"/api/posts/users/{rng.choice(people)}")
        else:
            body = {"trackId": rng.choice(tracks)["id"], "caption": "mixed"}
            response = await person.http.post("/api/posts", json=body)
        latencies[kind].append((time.perf_counter() - began) * 1000)
        if response.status_code >= 300:
            errors[kind] += 1


async def measure(url: str, *, clients: int, seconds: float, people: int) -> list[targets.Row]:
    sessions = [Session(url) for _ in range(clients)]
    try:
        for i, person in enumerate(sessions):
            await person.sign_in(login=f"demo{i % people:03d}", password=seed.PASSWORD)
        ids = sorted({p.user_id for p in sessions})
        tracks = await sessions[0].search_tracks("a", limit=10)
        latencies: dict[str, list[float]] = {kind: [] for kind, _ in KINDS}
        errors = dict.fromkeys(latencies, 0)
        began = time.monotonic()
        await asyncio.gather(
            *(
                _client(
                    person,
                    people=ids,
                    tracks=tracks,
                    until=began + seconds,
                    rng=random.Random(i),
                    latencies=latencies,
                    errors=errors,
                )
                for i, person in enumerate(sessions)
            )
        )
        elapsed = time.monotonic() - began
    finally:
        for person in sessions:
            await person.close()
    total = sum(map(len, latencies.values()))
    print(f"{clients} clients for {elapsed:.0f} s: {total} requests")
    print(f"{'kind':>7} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for kind, values in latencies.items():
        print(
            f"{kind:>7} {len(values):>6} {targets.percentile(values, 50):>8.0f} "
            f"{targets.percentile(values, 99):>8.0f} {errors[kind]:>6}"
        )
    rows = [targets.at_least("mixed req/s", total / elapsed, TARGET_RPS)]
    rows += [
        targets.at_most(f"{kind} p99", targets.percentile(v, 99), TARGET_P99_MS, unit=" ms")
        for kind, v in latencies.items()
    ]
    rows.append(targets.holds("no errors", not any(errors.values())))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--people", type=int, default=40, help="people the seed makes")
    parser.add_argument("--quick", action="store_true", help="a short run, for CI smoke runs")
    args = parser.parse_args()
    clients, seconds = (8, 10.0) if args.quick else (args.clients, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        with local.platform(
            data=data,
            gateway_port=servers.free_port(),
            log_dir=data / "logs",
            quiet=True,
            public_host="127.0.0.1",
            free_ports=True,
        ) as platform:
            platform.wait_ready(timeout=300)
            started = time.monotonic()
            assert seed.run(url=platform.gateway_url, users=args.people) == 0
            print(f"seeded in {time.monotonic() - started:.0f} s")
            rows = asyncio.run(
                measure(platform.gateway_url, clients=clients, seconds=seconds, people=args.people)
            )
    targets.report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
