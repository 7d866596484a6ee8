"""Fixtures for the music services: the fake Spotify's admin API (the fake itself is the
root conftest's), user-graph-view over real gRPC, and settings for every music component."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.graphview import server as graphview_server
from rhime.spotify.settings import Settings as SpotifySettings
from tests.support import SPOTIFY_CLIENT_ID as CLIENT_ID
from tests.support import SPOTIFY_CLIENT_SECRET as CLIENT_SECRET


@pytest.fixture
async def fake(spotify_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the fake's admin API, reset for this test."""
    async with httpx.AsyncClient(base_url=spotify_url) as client:
        (await client.post("/_fake/reset")).raise_for_status()
        yield client


@pytest.fixture
async def graph_view(make_settings: Callable[..., Any]) -> AsyncIterator[tuple[str, Any]]:
    """user-graph-view on a free port: (service URL template, the graph database)."""
    settings = make_settings(graphview_server.Settings, host="127.0.0.1", port=0)
    running = await graphview_server.start(settings)
    mongo: Any = AsyncIOMotorClient(settings.mongo_url)
    try:
        # a template without {port}: every component resolves to this one server
        yield f"http://127.0.0.1:{running.port}", mongo[settings.database_name("graph")]
    finally:
        await running.stop(0)
        mongo.close()


@pytest.fixture
def music_settings(
    make_settings: Callable[..., Any], spotify_url: str, graph_view: tuple[str, Any]
) -> Callable[..., Any]:
    """`music_settings(cls, **overrides)` for any music component, sharing one namespace,
    key and fake Spotify."""
    shared = {
        "spotify_client_id": CLIENT_ID,
        "spotify_client_secret": CLIENT_SECRET,
        "spotify_accounts_url": spotify_url,
        "spotify_api_url": spotify_url,
        "encryption_key": Fernet.generate_key().decode(),
        "spotify_backoff_seconds": 0.01,
        "service_url_template": graph_view[0],
        "job_retry_intervals": (),
    }

    def make(cls: type[Any] = SpotifySettings, **overrides: Any) -> Any:
        wanted = {k: v for k, v in shared.items() if k in cls.model_fields}
        return make_settings(cls, **(wanted | overrides))

    return make
