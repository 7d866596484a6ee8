"""Feed benchmark: fan-out on write for an author with 10K followers, and home-timeline page
reads through the gateway beside a bare FastAPI endpoint doing one Redis ZREVRANGE, one run.

Every component runs as its own process (`rhime serve`), as in a deployment, on its catalogue
port with a leading 2 (8111 → 28111) so a local run of the platform does not get in the way.

- fan-out: the author posts P times; each post's lag is post-created (HTTP 201) → the post is
  in the last follower's timeline; the rate is timeline inserts per second over that lag.
- reads: 16 keep-alive connections for S seconds on `GET /api/feed` (a page of 10 hydrated
  posts: post, track, author card, like count, comment count, liked by me) through the gateway
  with a bearer token, then the same on the bare endpoint.

    .venv/bin/python bench/feed.py [--followers 10000] [--posts 20] [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import bson
import redis.asyncio as aioredis
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI

from bench import components
from rhime import catalogue, events
from rhime.kit import access_tokens, identity, metrics
from rhime.kit import bus as bus_module
from rhime.runtime import servers

COMPONENTS = (
    "user-graph",
    "user-graph-view",
    "post",
    "comment",
    "like",
    "like-updater",
    "like-batch-updater",
    "like-count",
    "user",
    "feed",
    "gateway",
    "spotify",  # the post service looks each shared track up through it
)


async def _connect_spotify(
    http: aiohttp.ClientSession, spotify: str, headers: dict[str, str]
) -> str:
    """The author's Spotify connection (the OAuth round trip, against the fake Spotify) and
    a track id of its catalogue to share."""
    async with http.get(
        f"{spotify}/api/spotify/authorize", headers=headers, allow_redirects=False
    ) as r:
        assert r.status == 302, await r.text()
        consent = r.headers["location"]
    async with http.get(consent, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        back = urlsplit(r.headers["location"])
    async with http.get(
        f"{spotify}{back.path}?{back.query}", headers=headers, allow_redirects=False
    ) as r:
        assert r.status == 302, await r.text()
    async with http.get(
        f"{spotify}/api/spotify/search", params={"q": "a", "limit": "1"}, headers=headers
    ) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["tracks"][0]["id"])


def port(name: str) -> int:
    return int(f"2{catalogue.get(name).port}")


def wait_ready(url: str, name: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not become ready")


def bare_app(redis_url: str, key: str) -> FastAPI:
    app = FastAPI()
    client = aioredis.from_url(redis_url, decode_responses=True)

    @app.get("/bare")
    async def bare() -> dict[str, list[str]]:
        return {"posts": await client.zrevrange(key, 0, 9)}

    return app


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def load(
    url: str, headers: dict[str, str], *, workers: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < stop:
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = time.perf_counter() - began
    return {
        "rps": len(latencies) / elapsed,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "errors": failures,
    }


async def run(args: argparse.Namespace, rt: servers.Runtime, logs: Path) -> None:
    namespace = "bfeed" + secrets.token_hex(3)
    secret = secrets.token_hex(24)
    access = secrets.token_hex(24)
    env = {
        **components.env(rt, namespace=namespace, secret=secret),
        "RHIME_ACCESS_TOKEN_SECRET": access,
        "RHIME_SERVICE_URL_TEMPLATE": "http://127.0.0.1:2{port}",
        "RHIME_BIG_THRESHOLD": str(args.followers * 2),
        "RHIME_RATE_LIMIT_USER": "100000000",
        "RHIME_COOKIE_SECURE": "false",
        "RHIME_S3_ENDPOINT_URL": rt.urls["s3"],
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "RHIME_SPOTIFY_API_URL": rt.urls["spotify"],
        "RHIME_SPOTIFY_ACCOUNTS_URL": rt.urls["spotify"],
        "RHIME_SPOTIFY_CLIENT_ID": servers.FAKE_SPOTIFY_CLIENT_ID,
        "RHIME_SPOTIFY_CLIENT_SECRET": servers.FAKE_SPOTIFY_CLIENT_SECRET,
        "RHIME_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    procs = [components.start(n, port=port(n), env=env, logs=logs) for n in COMPONENTS]
    try:
        for name in COMPONENTS:
            if name != "user-graph-view":
                wait_ready(f"http://127.0.0.1:{port(name)}", name)
        await measure(args, rt, namespace=namespace, secret=secret, access=access)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)


async def measure(
    args: argparse.Namespace, rt: servers.Runtime, *, namespace: str, secret: str, access: str
) -> None:
    url = {name: f"http://127.0.0.1:{port(name)}" for name in COMPONENTS}
    r = aioredis.from_url(rt.urls["redis"], decode_responses=True)
    bus = await bus_module.Bus.connect(
        url=rt.urls["nats"], name="bench", namespace=namespace, metrics=metrics.create()
    )
    author, viewer = str(bson.ObjectId()), str(bson.ObjectId())
    followers = sorted(str(bson.ObjectId()) for _ in range(args.followers))
    people = [author, viewer, *followers]
    await bus.publish_many(
        [
            events.UserCreated(
                id=f"user.created:{u}", user_id=u, user_name=f"u{n}", email=f"u{n}@example.com"
            )
            for n, u in enumerate(people)
        ]
    )

    def as_user(user_id: str) -> dict[str, str]:
        token = identity.encode(identity.Identity(user_id=user_id, spotify=True), secret=secret)
        return {identity.HEADER: token}

    print(f"following: {len(followers)} followers + the viewer ...", flush=True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        track = await _connect_spotify(http, url["spotify"], as_user(author))
        sem = asyncio.Semaphore(64)

        async def follow(user_id: str) -> None:
            async with sem:
                for _ in range(200):
                    async with http.put(
                        f"{url['user-graph']}/api/graph/following/{author}",
                        headers=as_user(user_id),
                    ) as resp:
                        if resp.status == 200:
                            return
                    await asyncio.sleep(0.1)
                raise SystemExit("follow failed")

        began = time.perf_counter()
        await asyncio.gather(*(follow(u) for u in [viewer, *followers]))
        print(f"  {time.perf_counter() - began:.1f} s", flush=True)
        # Followers are active, with built timelines (as if they had read their feed).
        pipe = r.pipeline(transaction=False)
        for u in [viewer, *followers]:
            pipe.set(f"{namespace}:feed:{{{u}}}:active", "1", ex=3600)
            pipe.zadd(f"{namespace}:feed:{{{u}}}:timeline", {"~built": -1})
        await pipe.execute()

        last = f"{namespace}:feed:{{{followers[-1]}}}:timeline"
        lags = []
        for n in range(args.posts):
            sent = time.perf_counter()
            async with http.post(
                f"{url['post']}/api/posts",
                json={"trackId": track, "caption": f"post {n}"},
                headers=as_user(author),
            ) as resp:
                assert resp.status == 201, await resp.text()
                post_id = (await resp.json())["post"]["postId"]
            while await r.zscore(last, post_id) is None:  # noqa: ASYNC110 - polling is the probe
                await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - sent)
        rates = [len(followers) / lag for lag in lags]
        print(f"fan-out to {len(followers)} followers, {args.posts} posts:")
        print(
            f"  lag post → last follower's timeline  p50 {pct(lags, 0.5):8.1f} ms   "
            f"p99 {pct(lags, 0.99):8.1f} ms"
        )
        print(f"  timeline inserts/s                    median {statistics.median(rates):10.0f}")

        for _ in range(10 - args.posts):  # a full page to read
            await http.post(
                f"{url['post']}/api/posts",
                json={"trackId": track, "caption": "x"},
                headers=as_user(author),
            )
        await asyncio.sleep(1)
        # Likes and a comment so pages hydrate real numbers.
        timeline = await r.zrevrangebyscore(f"{namespace}:feed:{{{viewer}}}:timeline", "+inf", 0)
        for post_id in timeline[:10]:
            await http.put(f"{url['like']}/api/likes/{post_id}", headers=as_user(viewer))
            await http.post(
                f"{url['comment']}/api/comments/posts/{post_id}",
                json={"text": "nice"},
                headers=as_user(viewer),
            )

    token, _ = access_tokens.issue(user_id=viewer, user_name="viewer", spotify=True, secret=access)
    await r.set(f"{namespace}:connected:{viewer}", "1", ex=3600)
    headers = {"Authorization": f"Bearer {token}"}
    bare_port = servers.free_port()
    bare = uvicorn.Server(
        uvicorn.Config(
            bare_app(rt.urls["redis"], f"{namespace}:feed:{{{viewer}}}:timeline"),
            host="127.0.0.1",
            port=bare_port,
            log_config=None,
            access_log=False,
        )
    )
    bare_task = asyncio.create_task(bare.serve())
    while not bare.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.01)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url['gateway']}/api/feed", headers=headers) as resp,
    ):
        page = await resp.json()
        assert resp.status == 200, page
        assert page["posts"][0]["likeCount"] == 1, page
    print(f"home page reads, 16 connections, {args.seconds:.0f} s each:")
    for name, target, h in (
        ("gateway → feed", f"{url['gateway']}/api/feed", headers),
        ("bare ZREVRANGE", f"http://127.0.0.1:{bare_port}/bare", {}),
    ):
        await load(target, h, workers=16, seconds=1)  # warm up
        row = await load(target, h, workers=16, seconds=args.seconds)
        print(
            f"  {name:16} {row['rps']:8.0f} req/s   p50 {row['p50']:7.2f} ms   "
            f"p99 {row['p99']:7.2f} ms   errors {row['errors']:.0f}"
        )
    bare.should_exit = True
    await bare_task
    await bus.nc.close()
    await r.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1K followers, 5 posts, 2 s")
    args = parser.parse_args()
    if args.quick:
        args.followers, args.posts, args.seconds = 1000, 5, 2.0
    with components.stores(("redis", "nats", "mongo", "s3", "spotify")) as (rt, logs):
        asyncio.run(run(args, rt, logs))


if __name__ == "__main__":
    main()
