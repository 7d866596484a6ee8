"""Helpers for the content tests (post, comment, likes, feed)."""

from __future__ import annotations

import asyncio
import contextlib
import random

import uvicorn
from fastapi import FastAPI

from rhime.kit import identity
from tests.support import SECRET

TRACK = {
    "id": "4uLU6hMCjMI75M1A2tKUQC",
    "name": "Never Gonna Give You Up",
    "artists": [{"id": "0gxyHStUsqpMadRV0Di1Qt", "name": "Rick Astley"}],
    "url": "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
    "image": "https://i.scdn.co/image/ab67616d0000b273",
}


def service_headers(service: str) -> dict[str, str]:
    """The identity a component sends when it calls an internal route."""
    who = identity.Identity(user_id="", service=service)
    return {identity.HEADER: identity.encode(who, secret=SECRET)}


def loopback_host() -> str:
    """A random 127.x.y.z address, so components of concurrent test runs bound on the same
    ports do not collide."""
    rnd = random.Random()
    return f"127.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}"


class Hosted:
    """An app served by uvicorn on a given host and port inside the test's event loop."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        self.app = app
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Hosted:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(self.app.state.kit.ready.wait(), 30)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
