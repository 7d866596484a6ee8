"""Gateway overhead: one cheap authenticated endpoint (auth's `GET /api/auth/me`) called
directly and through the gateway, at 1 and 16 concurrent connections, in one run; then the
same through a second auth and gateway with tracing on (every span exported by OTLP/HTTP to a
local receiver that discards them) beside the first, tracing off; then sign-up and sign-in
throughput (argon2id dominates those, by design).

auth and the gateway run as separate processes (`rhime serve`), as in a deployment; the load
comes from an aiohttp client with one keep-alive connection per worker.

    .venv/bin/python bench/gateway.py [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson

from rhime.kit import identity
from rhime.runtime import otlpsink, servers


def start(
    name: str, port: int, env: dict[str, str], logs: Path, *, tag: str = ""
) -> subprocess.Popen[bytes]:
    log_name = f"{name}-{tag}" if tag else name
    out = open(logs / f"{log_name}.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "rhime", "serve", name],
        env={**os.environ, **env, "RHIME_PORT": str(port), "RHIME_COMPONENT": name},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"{name} did not become ready; see {logs / (log_name + '.log')}")


async def load(
    url: str, headers: dict[str, str], *, workers: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "rps": len(ordered) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "errors": errors,
    }


async def accounts(base: str, *, n: int, concurrency: int) -> tuple[float, float]:
    semaphore = asyncio.Semaphore(concurrency)
    tag = secrets.token_hex(3)
    async with aiohttp.ClientSession() as session:

        async def signup(i: int) -> None:
            async with semaphore:
                body = {
                    "userName": f"b{tag}{i}",
                    "email": f"b{tag}{i}@x.io",
                    "password": "pw!12345",
                }
                async with session.post(f"{base}/api/auth/signup", json=body) as r:
                    assert r.status == 201, await r.text()

        async def signin(i: int) -> None:
            async with semaphore:
                body = {"userName": f"b{tag}{i}", "password": "pw!12345"}
                async with session.post(f"{base}/api/auth/signin", json=body) as r:
                    assert r.status == 200, await r.text()

        began = time.perf_counter()
        await asyncio.gather(*(signup(i) for i in range(n)))
        up = n / (time.perf_counter() - began)
        began = time.perf_counter()
        await asyncio.gather(*(signin(i) for i in range(n)))
        return up, n / (time.perf_counter() - began)


async def measure(
    gateway: str, auth: str, traced: str, secret: str, seconds: float, users: int
) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"userName": "benchy", "email": "benchy@x.io", "password": "pw!12345"}
        async with session.post(f"{auth}/api/auth/signup", json=body) as r:
            user_id = orjson.loads(await r.read())["userId"]
        async with session.post(f"{gateway}/api/auth/signin", json=body) as r:
            token = orjson.loads(await r.read())["accessToken"]
    direct_headers = {
        identity.HEADER: identity.encode(
            identity.Identity(user_id=user_id, user_name="benchy"), secret=secret, ttl=3600
        )
    }
    proxied_headers = {"authorization": f"Bearer {token}"}
    print(f"GET /api/auth/me, {seconds:.0f} s per cell")
    print(f"{'conns':>5} {'path':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for workers in (1, 16):
        results = {}
        for name, base, headers in (
            ("direct", auth, direct_headers),
            ("gateway", gateway, proxied_headers),
        ):
            await load(f"{base}/api/auth/me", headers, workers=workers, seconds=0.5)  # warm
            row = await load(f"{base}/api/auth/me", headers, workers=workers, seconds=seconds)
            results[name] = row
            print(
                f"{workers:>5} {name:>8} {row['rps']:>9.0f} {row['p50']:>8.2f} "
                f"{row['p99']:>8.2f} {row['errors']:>6.0f}"
            )
        ratio = results["gateway"]["rps"] / results["direct"]["rps"]
        print(f"{workers:>5} {'ratio':>8} {ratio:>9.2f}  (gateway / direct throughput)")
    print("tracing: through the gateway, off and on (auth and gateway both tracing)")
    print(f"{'conns':>5} {'tracing':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for workers in (1, 16):
        results = {}
        for name, base in (("off", gateway), ("on", traced)):
            await load(f"{base}/api/auth/me", proxied_headers, workers=workers, seconds=0.5)
            row = await load(
                f"{base}/api/auth/me", proxied_headers, workers=workers, seconds=seconds
            )
            results[name] = row
            print(
                f"{workers:>5} {name:>8} {row['rps']:>9.0f} {row['p50']:>8.2f} "
                f"{row['p99']:>8.2f} {row['errors']:>6.0f}"
            )
        ratio = results["on"]["rps"] / results["off"]["rps"]
        print(f"{workers:>5} {'ratio':>8} {ratio:>9.2f}  (on / off throughput)")
    up, signin = await accounts(gateway, n=users, concurrency=8)
    print(
        f"sign-up {up:.1f}/s, sign-in {signin:.1f}/s through the gateway ({users} accounts, 8 "
        "concurrent; argon2id t=3 m=64MiB p=4 dominates)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="short cells, for CI smoke runs")
    args = parser.parse_args()
    seconds, users = (1.0, 8) if args.quick else (args.seconds, args.users)
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers.running(directory=Path(tmp), names=("redis", "nats", "mongo")) as runtime,
        otlpsink.Sink(keep=False) as sink,
    ):
        logs = Path(tmp)
        internal = secrets.token_urlsafe(40)
        auth_port, gateway_port = servers.free_port(), servers.free_port()
        env = {
            "RHIME_NAMESPACE": "bench",
            "RHIME_MONGO_URL": runtime.urls["mongo"],
            "RHIME_REDIS_URL": runtime.urls["redis"],
            "RHIME_NATS_URL": runtime.urls["nats"],
            "RHIME_INTERNAL_SECRET": internal,
            "RHIME_ACCESS_TOKEN_SECRET": secrets.token_urlsafe(40),
            "RHIME_LOG_LEVEL": "WARNING",
            "RHIME_COOKIE_SECURE": "false",
            "RHIME_SERVICE_URL_TEMPLATE": "http://127.0.0.1:1",
            "RHIME_UPSTREAMS": orjson.dumps({"auth": f"http://127.0.0.1:{auth_port}"}).decode(),
            "RHIME_RATE_LIMIT_IP": "1000000",
            "RHIME_RATE_LIMIT_USER": "1000000",
        }
        traced_auth, traced_gateway = servers.free_port(), servers.free_port()
        traced_env = {
            **env,
            "RHIME_OTLP_ENDPOINT": sink.url,
            "RHIME_UPSTREAMS": orjson.dumps({"auth": f"http://127.0.0.1:{traced_auth}"}).decode(),
        }
        processes = [start("auth", auth_port, env, logs)]
        try:
            processes.append(start("gateway", gateway_port, env, logs))
            processes.append(start("auth", traced_auth, traced_env, logs, tag="traced"))
            processes.append(start("gateway", traced_gateway, traced_env, logs, tag="traced"))
            asyncio.run(
                measure(
                    f"http://127.0.0.1:{gateway_port}",
                    f"http://127.0.0.1:{auth_port}",
                    f"http://127.0.0.1:{traced_gateway}",
                    internal,
                    seconds,
                    users,
                )
            )
            print(f"tracing on: {sink.exports} OTLP exports received")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
