"""Fixtures for the music services: the fake Spotify (a real uvicorn process, started once
per session), user-graph-view over real gRPC, and settings for every music component."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.graphview import server as graphview_server
from rhime.runtime import servers
from rhime.spotify.settings import Settings as SpotifySettings

CLIENT_ID = "rhime-test-client"
CLIENT_SECRET = "rhime-test-client-secret"


@pytest.fixture(scope="session")
def spotify_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runtime = servers.Runtime(directory=tmp_path_factory.mktemp("spotify"), names=("spotify",))
    runtime.servers["spotify"].env = {
        "RHIME_FAKE_SPOTIFY_CLIENT_ID": CLIENT_ID,
        "RHIME_FAKE_SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
    }
    runtime.start()
    try:
        yield runtime.urls["spotify"]
    finally:
        runtime.stop()


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
