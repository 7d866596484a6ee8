"""Server time of the web pages beside the API calls they make, in one run.

    PYTHONPATH=. .venv/bin/python bench/web.py [--seconds 10] [--connections 8] [--quick]

(run as a module: a script's folder would shadow the standard library with bench/operator.py)

Starts the whole platform locally (as `rhime up`), seeds a viewer who connected (fake) Spotify
and follows an author with 10 posts plus a few people to be recommended, then drives, at N
concurrent connections through the gateway with the viewer's cookie:
- `GET /` (home, 10 posts) and the API call it makes (`GET /api/feed`);
- `GET /connect` and its calls (`/api/recommendations`, then the person's profile, counts
  and top genres).
Each line reports requests, p50 and p99 latency as the client saw them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from rhime.runtime import local, servers
from tests.web import web_site as ws


async def drive(
    http: aiohttp.ClientSession, url: str, *, seconds: float, connections: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with http.get(url, allow_redirects=False) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: {response.status}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies


def line(name: str, latencies: list[float], seconds: float) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = len(ordered) / seconds
    return f"{name:44} {len(ordered):7d} {rate:8.0f}/s {p50:8.1f} ms {p99:8.1f} ms"


async def seed(base: str) -> tuple[ws.Person, str]:
    author = await ws.Person(base, ws.unique("author")).join()
    for i in range(10):
        await author.share("the", f"Bench post {i}")
    others = [await ws.Person(base, ws.unique("peer")).join() for _ in range(3)]
    viewer = await ws.Person(base, ws.unique("viewer")).join()
    await viewer.call("PUT", f"/api/graph/following/{author.user_id}")

    async def ready() -> str | None:
        feed = await viewer.call("GET", "/api/feed")
        recs = await viewer.call("GET", "/api/recommendations")
        if len(feed["posts"]) >= 10 and recs["recommendations"]:
            return str(recs["recommendations"][0]["userId"])
        return None

    other = await ws.eventually(ready, timeout=180, every=1)
    for person in (author, *others):
        await person.close()
    return viewer, other


async def run(base: str, *, seconds: float, connections: int) -> None:
    viewer, other = await seed(base)
    cookies = viewer.http.cookie_jar
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({c.key: c.value for c in cookies})
    connector = aiohttp.TCPConnector(limit=connections * 2)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
        cases: list[tuple[str, str]] = [
            ("page  GET /  (home, 10 posts)", "/"),
            ("  api GET /api/feed", "/api/feed"),
            ("page  GET /connect", "/connect"),
            ("  api GET /api/recommendations", "/api/recommendations"),
            ("  api GET /api/users/{id}", f"/api/users/{other}"),
            ("  api GET /api/graph/users/{id}/counts", f"/api/graph/users/{other}/counts"),
            (
                "  api GET /api/spotify/users/{id}/top/genres",
                f"/api/spotify/users/{other}/top/genres",
            ),
        ]
        measure: Callable[[str], Awaitable[list[float]]] = lambda path: drive(  # noqa: E731
            http, base + path, seconds=seconds, connections=connections
        )
        await measure("/")  # warm connections and caches
        print(f"{'':44} {'requests':>7} {'rate':>10} {'p50':>11} {'p99':>11}")
        for name, path in cases:
            print(line(name, await measure(path), seconds), flush=True)
    await viewer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 3.0
    port = servers.free_port()
    # One bench user makes thousands of requests a minute: lift the gateway's rate limits.
    os.environ |= {
        "RHIME_RATE_LIMIT_IP": "100000000",
        "RHIME_RATE_LIMIT_USER": "100000000",
        "RHIME_GATEWAY_URL": f"http://127.0.0.1:{port}",
        "RHIME_LOG_LEVEL": "WARNING",
        # the fake Spotify must know the client id the components use
        "RHIME_FAKE_SPOTIFY_CLIENT_ID": "rhime-local",
        "RHIME_FAKE_SPOTIFY_CLIENT_SECRET": "rhime-local-secret",
    }
    with tempfile.TemporaryDirectory() as data:
        logs = Path(data) / "logs"
        logs.mkdir()
        with local.platform(data=Path(data), gateway_port=port, log_dir=logs, quiet=True) as p:
            p.wait_ready(timeout=180)
            print(f"platform ready; {args.connections} connections, {args.seconds:.0f} s each")
            base = f"http://localhost:{port}"
            asyncio.run(run(base, seconds=args.seconds, connections=args.connections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
