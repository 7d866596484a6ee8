from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo
import pytest
import redis

from rhime import events
from rhime.kit import bus, metrics
from rhime.runtime import servers


def test_servers_start_answer_and_stop(tmp_path: Path) -> None:
    runtime = servers.Runtime(directory=tmp_path, names=("redis", "mongo", "nats"))
    runtime.start()
    try:
        assert redis.Redis.from_url(runtime.urls["redis"]).ping()
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(runtime.urls["mongo"])
        assert client.admin.command("ping")["ok"] == 1.0
        client.close()
        port = int(runtime.urls["nats"].rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), 1).close()
    finally:
        runtime.stop()
    for server in runtime.servers.values():
        assert server.process is not None
        assert server.process.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 1)


async def test_namespaces_isolate_databases_keys_and_streams(
    make_settings: Callable[..., Any],
) -> None:
    a = make_settings(namespace="isoa")
    b = make_settings(namespace="isob")
    assert a.database_name("post") != b.database_name("post")
    assert a.key("timeline", "u1") != b.key("timeline", "u1")
    bus_a = await bus.Bus.connect(
        url=a.nats_url, name="a", namespace="isoa", metrics=metrics.create()
    )
    bus_b = await bus.Bus.connect(
        url=b.nats_url, name="b", namespace="isob", metrics=metrics.create()
    )
    await bus_a.ensure_streams()
    await bus_b.ensure_streams()
    seen_b: list[str] = []

    async def on_b(event: events.UserCreated) -> None:
        seen_b.append(event.id)

    bus_b.start(bus.Subscription(event=events.UserCreated, handler=on_b), component="iso")
    await bus_a.publish(events.UserCreated(id="only-a", user_id="1", user_name="a"))
    await bus_b.publish(events.UserCreated(id="only-b", user_id="2", user_name="b"))
    for _ in range(100):
        if seen_b:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert seen_b == ["only-b"]
    await bus_a.close(grace=0)
    await bus_b.close(grace=0)


def test_rhime_up_starts_and_stops_cleanly(tmp_path: Path) -> None:
    """`rhime up` with no components ready yet still starts its servers, reports, and stops
    everything on Ctrl-C."""
    gateway = servers.free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rhime",
            "up",
            "--data",
            str(tmp_path),
            "--gateway-port",
            str(gateway),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Rhime is up" in line or not line:
            break
    assert any("Rhime is up" in line for line in lines), "".join(lines)
    assert any("redis ready" in line for line in lines)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "stopped." in rest
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
    assert list((tmp_path / "logs").iterdir())


def test_local_redis_is_bounded_and_never_evicts(runtime: servers.Runtime) -> None:
    client = redis.Redis.from_url(runtime.urls["redis"], decode_responses=True)
    try:
        config = client.config_get("maxmemory*")
        assert int(config["maxmemory"]) > 0
        # queues, like-count deltas and revocations are state: refuse writes rather than drop them
        assert config["maxmemory-policy"] == "noeviction"
    finally:
        client.close()
