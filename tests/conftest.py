"""Fixtures for every test: real Redis, NATS with JetStream and a MongoDB-wire server, started
once per session on free loopback ports; each test gets its own namespace (database names,
Redis keys, NATS subjects and streams) so tests never see each other's data."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from rhime import grants
from rhime.kit.settings import Settings
from rhime.runtime import local, servers
from tests.support import SECRET, SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Runtime]:
    directory = tmp_path_factory.mktemp("runtime")
    # Redis and NATS admit only the admin, whose credentials `urls` carry; tests of the
    # components' own users add them (tests/kit/test_kit_grants.py)
    access = grants.Access(
        seed=secrets.token_urlsafe(32), namespace="rhime", admin=True, components=()
    )
    with servers.running(
        directory=directory, names=("redis", "nats", "mongo"), access=access
    ) as rt:
        yield rt


@pytest.fixture(scope="session")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with servers.running(directory=tmp_path_factory.mktemp("s3"), names=("s3",)) as rt:
        yield rt.urls["s3"]


@pytest.fixture(scope="session")
def spotify_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake Spotify (accounts service and Web API), a real uvicorn process."""
    runtime = servers.Runtime(directory=tmp_path_factory.mktemp("spotify"), names=("spotify",))
    runtime.servers["spotify"].env = {
        "RHIME_FAKE_SPOTIFY_CLIENT_ID": SPOTIFY_CLIENT_ID,
        "RHIME_FAKE_SPOTIFY_CLIENT_SECRET": SPOTIFY_CLIENT_SECRET,
    }
    runtime.start()
    try:
        yield runtime.urls["spotify"]
    finally:
        runtime.stop()


@pytest.fixture
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def make_settings(runtime: servers.Runtime, namespace: str) -> Callable[..., Any]:
    """Build any Settings subclass pointed at the session's servers and this test's namespace."""

    def make(cls: type[Settings] = Settings, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "namespace": namespace,
            "mongo_url": runtime.urls["mongo"],
            "redis_url": runtime.urls["redis"],
            "nats_url": runtime.urls["nats"],
            "internal_secret": SECRET,
            "log_json": False,
            "redelivery_backoff": (0.05, 0.1, 0.2),
            "outbox_relay_seconds": 0.2,
            # JetStream reserves every namespace's stream budget on the session's server
            "stream_storage_bytes": 16 << 20,
        }
        # argon2id at OWASP's minimum: the suite hashes many passwords on two cores
        cheap_hashing = {"argon2_time_cost": 2, "argon2_memory_kib": 19456, "argon2_parallelism": 1}
        values.update({k: v for k, v in cheap_hashing.items() if k in cls.model_fields})
        values.update(overrides)
        return cls(**values)

    return make


class Served:
    """A uvicorn server running an app inside the test's event loop."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
                proxy_headers=False,  # as `rhime serve` runs them
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self, *, wait_ready: bool = True) -> Served:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        if wait_ready:
            await asyncio.wait_for(self.app.state.kit.ready.wait(), 30)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """`await serve(app)` runs the app on a free port until the test ends."""
    started: list[Served] = []

    async def start(app: FastAPI, *, port: int | None = None, wait_ready: bool = True) -> Served:
        served = Served(app, port or servers.free_port())
        started.append(served)
        return await served.start(wait_ready=wait_ready)

    yield start
    for served in reversed(started):
        await served.stop()


def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.Platform]:
    """The whole platform as `rhime up` runs it: backing servers and every component as its
    own process, gateway on a free port."""
    data = tmp_path_factory.mktemp("platform")
    with local.platform(
        data=data,
        gateway_port=servers.free_port(),
        log_dir=data / "logs",
        quiet=True,
        public_host="127.0.0.1",
        free_ports=True,
    ) as running:
        # seventeen components starting at once on two busy cores can take minutes
        running.wait_ready(timeout=300)
        yield running


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.Platform]:
    """The platform, started once for the tests that ask for it."""
    yield from local_platform(tmp_path_factory)


@pytest.fixture
def fresh_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.Platform]:
    """A platform of its own, as a newcomer's first `make run` starts it."""
    yield from local_platform(tmp_path_factory)


@pytest.fixture(scope="session")
def repo() -> Path:
    return servers.REPO
