from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pymongo.errors
import pytest
import redis.exceptions
from fastapi import APIRouter
from pydantic import BaseModel, Field

from rhime.kit import app as kit_app
from rhime.kit import errors, identity, stores
from rhime.runtime import servers
from tests.support import SECRET, auth_headers, sample


class Body(BaseModel):
    name: str = Field(min_length=2)
    age: int = Field(ge=0)


def build(settings: Any, **kwargs: Any) -> Any:
    router = APIRouter()

    @router.get("/ok")
    async def ok(user: identity.User) -> dict[str, str]:
        return {"user": user.user_id}

    @router.post("/body")
    async def body(payload: Body) -> Body:
        return payload

    @router.get("/bad")
    async def bad() -> None:
        raise errors.bad_request("That is not allowed.", field="thing")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    @router.get("/count")
    async def count(kit: kit_app.KitDep) -> dict[str, int]:
        return {"n": int(await kit.redis.incr("kit:count"))}

    return kit_app.create_app(settings, title="test", database="kit", routers=[router], **kwargs)


async def test_envelope_for_every_error(make_settings: Callable[..., Any], serve: Any) -> None:
    served = await serve(build(make_settings()))
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await client.get("/ok", headers=auth_headers("u1"))
        assert r.status_code == 200, r.text
        assert r.json() == {"user": "u1"}
        assert r.headers["x-request-id"]

        r = await client.get("/bad")
        assert r.status_code == 400
        assert r.json() == {"errors": [{"msg": "That is not allowed.", "field": "thing"}]}

        r = await client.post("/body", json={"name": "x", "age": -1})
        assert r.status_code == 400
        fields = sorted(item["field"] for item in r.json()["errors"])
        assert fields == ["age", "name"]

        r = await client.post(
            "/body", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert "JSON" in r.json()["errors"][0]["msg"]

        r = await client.get("/nowhere")
        assert r.status_code == 404
        assert r.json() == {"errors": [{"msg": "The resource cannot be found."}]}

        r = await client.delete("/ok")
        assert r.status_code == 405
        assert "errors" in r.json()

        r = await client.get("/boom")
        assert r.status_code == 500
        assert r.json() == {"errors": [{"msg": "Internal server error."}]}
        assert "hunter2" not in r.text

        r = await client.post(
            "/body", content=b"x" * 2_000_001, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert r.json()["errors"][0]["msg"]


async def test_identity_is_verified(make_settings: Callable[..., Any], serve: Any) -> None:
    served = await serve(build(make_settings()))
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.get("/ok")).status_code == 401
        forged = auth_headers("u1", secret="not-the-internal-secret-at-all-0123456789")
        r = await client.get("/ok", headers=forged)
        assert r.status_code == 401
        assert r.json() == {"errors": [{"msg": "The user is not authenticated."}]}
        plain = {identity.HEADER: '{"userId": "u1", "isAuth": true}'}
        assert (await client.get("/ok", headers=plain)).status_code == 401
        expired = {
            identity.HEADER: identity.encode(
                identity.Identity(user_id="u1"), secret=SECRET, ttl=-10
            )
        }
        assert (await client.get("/ok", headers=expired)).status_code == 401
        service = {
            identity.HEADER: identity.encode(
                identity.Identity(user_id="", service="feed"), secret=SECRET
            )
        }
        assert (await client.get("/ok", headers=service)).status_code == 401


async def test_request_id_is_propagated(make_settings: Callable[..., Any], serve: Any) -> None:
    served = await serve(build(make_settings()))
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await client.get("/ok", headers={**auth_headers("u1"), "x-request-id": "abc123"})
        assert r.headers["x-request-id"] == "abc123"


async def test_metrics_count_requests(make_settings: Callable[..., Any], serve: Any) -> None:
    served = await serve(build(make_settings()))
    async with httpx.AsyncClient(base_url=served.url) as client:
        await client.get("/bad")
        text = (await client.get("/metrics")).text
        assert 'rhime_http_requests_total{method="GET",route="/bad",status="400"} 1.0' in text
        assert "rhime_http_request_seconds_bucket" in text


async def test_readyz_follows_redis(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    own = servers.Runtime(directory=tmp_path, names=("redis",))
    own.start()
    try:
        served = await serve(build(make_settings(redis_url=own.urls["redis"])))
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/readyz")).status_code == 200
            own.servers["redis"].stop()
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"errors": [{"msg": "redis is not reachable"}]}
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.to_thread(own.restart, "redis")
            for _ in range(50):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        own.stop()


async def test_a_store_that_is_down_answers_503_to_retry(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    """Not a 500: nothing was done, and the client may simply try again."""
    own = servers.Runtime(directory=tmp_path, names=("redis",))
    own.start()
    try:
        served = await serve(build(make_settings(redis_url=own.urls["redis"])))
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/count")).status_code == 200
            own.servers["redis"].stop()
            r = await client.get("/count")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.json() == {"errors": [{"msg": "The service is not ready."}]}
            scraped = (await client.get("/metrics")).text
            assert sample(scraped, "rhime_store_unavailable_total", store="redis") == 1
            await asyncio.to_thread(own.restart, "redis")
            assert (await client.get("/count")).status_code == 200
    finally:
        own.stop()


async def test_not_ready_until_dependencies_appear(
    make_settings: Callable[..., Any], serve: Any, tmp_path: Path
) -> None:
    port = servers.free_port()
    served = await serve(
        build(make_settings(redis_url=f"redis://127.0.0.1:{port}/0")), wait_ready=False
    )
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await client.get("/readyz")
        assert r.status_code == 503
        own = servers.Runtime(directory=tmp_path, names=("redis",), ports={"redis": port})
        own.start()
        try:
            await asyncio.wait_for(served.app.state.kit.ready.wait(), 20)
            assert (await client.get("/readyz")).status_code == 200
        finally:
            own.stop()


def test_settings_errors_are_clear_at_start_up() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIME_")}
    env["RHIME_PORT"] = "not-a-port"
    code = (
        "from rhime import catalogue, cli; cli.load_settings(catalogue.Component("
        "name='probe', kind=catalogue.Kind.HTTP, port=1, entrypoint='rhime.kit.app:create_app'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "RHIME_INTERNAL_SECRET" in result.stderr
    assert "RHIME_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_component_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rhime", "serve", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown component" in result.stderr


@pytest.mark.parametrize("secret", ["", "short"])
def test_internal_secret_must_be_long(secret: str, make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="internal_secret"):
        make_settings(internal_secret=secret)


@contextlib.asynccontextmanager
async def stalled(server: servers.Server, *, thaw_after: float) -> AsyncIterator[None]:
    """Freeze the server's process (it keeps its sockets but answers nothing) until
    `thaw_after` seconds pass or the block ends: a store that stalls rather than goes away.
    A client without timeouts waits the stall out and then succeeds."""
    process = server.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    thaw = asyncio.get_running_loop().call_later(thaw_after, process.send_signal, signal.SIGCONT)
    try:
        yield
    finally:
        thaw.cancel()
        process.send_signal(signal.SIGCONT)


async def test_a_stalled_redis_fails_the_call_instead_of_hanging_it(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    own = servers.Runtime(directory=tmp_path, names=("redis",))
    own.start()
    client = stores.redis(make_settings(redis_url=own.urls["redis"]))
    try:
        assert await client.ping()
        # redis-py's defaults would wait out the stall (5 s per try) and then succeed
        async with stalled(own.servers["redis"], thaw_after=10.0):
            with pytest.raises(redis.exceptions.TimeoutError):
                await client.get("anything")
        assert await client.ping()
    finally:
        await client.aclose()
        own.stop()


async def test_a_stalled_mongo_fails_the_call_instead_of_hanging_it(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    own = servers.Runtime(directory=tmp_path, names=("mongo",))
    own.start()
    client = stores.mongo(
        make_settings(mongo_url=own.urls["mongo"], mongo_timeout_seconds=0.5), appname="t"
    )
    try:
        things = client["stall"]["things"]
        await things.insert_one({"_id": 1})
        # the read fails, and so does its one retry on a fresh connection
        async with stalled(own.servers["mongo"], thaw_after=15.0):
            with pytest.raises(pymongo.errors.ConnectionFailure):
                await things.find_one({"_id": 1})
    finally:
        client.close()
        own.stop()


async def test_a_failing_task_is_reported_down_and_restarted(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    runs: list[int] = []
    ran = asyncio.Event()
    healthy = asyncio.Event()

    async def syncer(kit: kit_app.Kit) -> None:
        runs.append(1)
        ran.set()
        if not healthy.is_set():
            raise RuntimeError("store away")
        await asyncio.Event().wait()

    served = await serve(build(make_settings(), tasks=[syncer]))
    async with httpx.AsyncClient(base_url=served.url) as client:
        await ran.wait()
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"errors": [{"msg": "syncer is down: RuntimeError: store away"}]}
        healthy.set()
        for _ in range(100):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await client.get("/readyz")).status_code == 200
    assert len(runs) >= 2


async def test_a_components_own_resources_open_with_the_app_and_close_after_its_consumers(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    """Opened before anything can use them, closed after the consumers and tasks stopped
    and before the kit's own connections; read typed through `kit.resource`."""
    seen: list[str] = []

    def tracked(name: str) -> Callable[[Any], contextlib.AbstractAsyncContextManager[str]]:
        @contextlib.asynccontextmanager
        async def open_(kit: kit_app.Kit) -> AsyncIterator[str]:
            seen.append(f"open {name}")
            yield f"{name} client"
            # the kit's connections are still there for a resource's close
            seen.append(f"close {name}, redis {'up' if await kit.redis.ping() else 'down'}")

        return open_

    first = kit_app.Resource("first", open=tracked("first"))
    second = kit_app.Resource("second", open=tracked("second"))

    async def task(kit: kit_app.Kit) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            seen.append(f"task stopped, {kit.resource(second)} still open")

    app = kit_app.create_app(
        make_settings(), title="owns", resources=[first, second], tasks=[task], nats=False
    )
    kit: kit_app.Kit = app.state.kit
    with pytest.raises(RuntimeError, match="first is not open"):
        kit.resource(first)
    served = await serve(app)
    assert kit.resource(first) == "first client"
    assert kit.resource(second) == "second client"
    await served.stop()
    assert seen == [
        "open first",
        "open second",
        "task stopped, second client still open",
        "close second, redis up",
        "close first, redis up",
    ]
