"""Helpers for the content tests (post, comment, likes, feed)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import httpx
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI

from rhime.kit import identity
from rhime.music import population as pop
from rhime.spotify.settings import Settings as SpotifySettings
from tests.music_services.music_helpers import SPEC, connect
from tests.support import SECRET, SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET

# a track of the fake Spotify's catalogue, as the spotify service describes it
_CATALOGUE = pop.catalogue(SPEC)
_FIRST = min(_CATALOGUE.tracks.values(), key=lambda t: t.id)
TRACK: dict[str, Any] = {
    "id": _FIRST.id,
    "name": _FIRST.name,
    "artists": [{"id": a, "name": _CATALOGUE.artists[a].name} for a in _FIRST.artist_ids],
    "url": f"https://open.spotify.com/track/{_FIRST.id}",
}


def spotify_settings(make_settings: Any, *, fake_url: str, public_url: str, **extra: Any) -> Any:
    """Settings of a spotify service that talks to the fake Spotify."""
    return make_settings(
        SpotifySettings,
        component="spotify",
        spotify_client_id=SPOTIFY_CLIENT_ID,
        spotify_client_secret=SPOTIFY_CLIENT_SECRET,
        spotify_accounts_url=fake_url,
        spotify_api_url=fake_url,
        encryption_key=Fernet.generate_key().decode(),
        spotify_backoff_seconds=0.01,
        public_url=public_url,
        **extra,
    )


async def connect_spotify(spotify_url: str, user_id: str, *, listener: int) -> None:
    """The OAuth dance against the spotify service at `spotify_url`, consenting as a fake
    listener: what a person does before they may post."""
    async with httpx.AsyncClient(base_url=spotify_url, timeout=20) as client:
        r = await connect(client, user_id, listener=listener)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/", r.headers


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
