"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import nats.errors
import orjson

from rhime import events
from rhime.kit import identity, streams

SECRET = "test-internal-secret-0123456789-abcdefghij"
# the app credentials the fake Spotify is started with
SPOTIFY_CLIENT_ID = "rhime-test-client"
SPOTIFY_CLIENT_SECRET = "rhime-test-client-secret"


def auth_headers(
    user_id: str, *, user_name: str = "someone", spotify: bool = True, secret: str = SECRET
) -> dict[str, str]:
    """Headers carrying the identity the gateway would forward for this user."""
    token = identity.encode(
        identity.Identity(user_id=user_id, user_name=user_name, spotify=spotify), secret=secret
    )
    return {identity.HEADER: token}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Retry `check` until it stops raising AssertionError; returns its result. Events and jobs
    make some effects asynchronous."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


def sample(scraped: str, name: str, **labels: str) -> float | None:
    """One series' value in a `/metrics` text (labels in the metric's declared order), None
    when it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in scraped.splitlines():
        if line.startswith(series):
            return float(line.split()[-1])
    return None


async def published(settings: Any, subject: str, *, expect: int) -> list[dict[str, Any]]:
    """The payloads published on `subject` in this test's namespace: waits (up to 10 s) for
    `expect` of them, then takes whatever else is already there."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        stream = events.stream_name(settings.namespace, events.noun(subject))
        sub = await js.pull_subscribe(f"{settings.namespace}.{subject}", stream=stream)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(100, timeout=0.3)
            except (TimeoutError, nats.errors.TimeoutError):
                if len(found) >= expect:
                    break
                continue
            for msg in msgs:
                found.append(orjson.loads(msg.data))
                await msg.ack()
        return found
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def stream_gone(settings: Any, noun: str) -> AsyncIterator[None]:
    """JetStream refuses the stream's events (no stream answers) until the block ends, when
    the stream is declared again as the kit declares it: a NATS outage as publishers see it."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        await js.delete_stream(events.stream_name(settings.namespace, noun))
        yield
        await js.add_stream(
            streams.config(
                namespace=settings.namespace, noun=noun, budget=settings.stream_storage_bytes
            )
        )
    finally:
        await nc.close()
