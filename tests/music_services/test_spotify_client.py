"""The spotify service's calls to the fake Spotify through spotipy: Retry-After waited out,
deadlines held against a slow Spotify, rotated refresh tokens kept, and the calls made on a
bounded pool of threads, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from rhime.music.spotify import tokens
from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from rhime.spotify.settings import Settings
from tests.music_services.music_helpers import connect, oid, service_headers
from tests.support import SPOTIFY_CLIENT_ID as CLIENT_ID
from tests.support import SPOTIFY_CLIENT_SECRET as CLIENT_SECRET
from tests.support import auth_headers

Served = Callable[..., contextlib.AbstractAsyncContextManager[tuple[httpx.AsyncClient, Any]]]


@contextlib.asynccontextmanager
async def _served(
    music_settings: Callable[..., Any], serve: Any, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    port = servers.free_port()
    settings = music_settings(Settings, public_url=f"http://127.0.0.1:{port}", **overrides)
    served = await serve(spotify_app.create(settings), port=port)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        yield client, served.app.state.kit


async def _stats(fake: httpx.AsyncClient) -> dict[str, Any]:
    r = await fake.get("/_fake/stats")
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


async def _expire_soon(kit: Any, user: str) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    await kit.database["tokens"].update_one({"_id": user}, {"$set": {"expiresAt": soon}})


async def _search(client: httpx.AsyncClient, user: str) -> httpx.Response:
    return await client.get("/api/spotify/search", params={"q": "the"}, headers=auth_headers(user))


async def test_a_web_api_429_is_waited_out_as_long_as_retry_after_asks(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve) as (client, _):
        user = oid()
        await connect(client, user, listener=7)
        before = (await _stats(fake))["v1_requests"]
        await fake.post("/_fake/faults", json={"status": 429, "count": 1, "retry_after": 1})
        started = time.monotonic()
        r = await _search(client, user)
        assert r.status_code == 200, r.text
        assert time.monotonic() - started >= 1.0  # not retried at once
        assert (await _stats(fake))["v1_requests"] == before + 2


async def test_a_429_on_the_code_exchange_is_waited_out_and_the_code_still_works(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve) as (client, kit):
        user = oid()
        fault = {"status": 429, "count": 1, "retry_after": 1, "path_prefix": "/api/token"}
        await fake.post("/_fake/faults", json=fault)
        started = time.monotonic()
        r = await connect(client, user, listener=3)
        assert r.headers["location"] == "/"
        assert time.monotonic() - started >= 1.0
        assert (await _stats(fake))["token_requests"] == 1  # the 429 came before the endpoint
        doc = await kit.database["tokens"].find_one({"_id": user})
        assert doc["connected"] is True
        assert doc["connection"] == 1


async def test_the_stored_refresh_token_changes_only_when_spotify_rotates_it(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve) as (client, kit):
        user = oid()
        await connect(client, user, listener=5)
        coll = kit.database["tokens"]
        connected = await coll.find_one({"_id": user})

        # the fake's first refresh of a grant keeps the refresh token: the stored one stays
        # as it is, ciphertext and all (a refresh that started from it still fences on it)
        await _expire_soon(kit, user)
        first = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert first.status_code == 200, first.text
        kept = await coll.find_one({"_id": user})
        assert kept["refresh"] == connected["refresh"]
        assert kept["access"] != connected["access"]

        # the second rotates it and revokes the old one: the new one is stored
        await _expire_soon(kit, user)
        second = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert second.status_code == 200, second.text
        rotated = await coll.find_one({"_id": user})
        old = tokens.decrypt(kit.settings, connected["refresh"])
        new = tokens.decrypt(kit.settings, rotated["refresh"])
        assert new != old
        form = {"grant_type": "refresh_token", "refresh_token": old}
        refused = await fake.post("/api/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
        assert refused.json()["error"] == "invalid_grant"

        # and it is the one the next refresh uses
        await _expire_soon(kit, user)
        third = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert third.status_code == 200, third.text
        assert third.json()["token"] not in {first.json()["token"], second.json()["token"]}
        assert (await coll.find_one({"_id": user}))["connected"] is True


async def test_a_slow_spotify_is_given_up_at_the_calls_deadline(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    """The deadline holds within an attempt too: Spotify answering after 5 s is not waited
    for when the call has 1 s (the per-read timeout alone is 10 s)."""
    async with _served(music_settings, serve, spotify_request_seconds=1.0) as (client, _):
        user = oid()
        await connect(client, user, listener=7)
        await fake.post("/_fake/faults", json={"status": 503, "count": 1, "delay": 5})
        started = time.monotonic()
        r = await _search(client, user)
        took = time.monotonic() - started
        assert r.status_code == 502, r.text
        assert r.json()["errors"][0]["msg"]
        assert took < 4


async def test_a_slow_refresh_is_given_up_at_its_deadline_and_the_connection_stays(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve, spotify_refresh_seconds=1.0) as (client, kit):
        user = oid()
        await connect(client, user, listener=5)
        await _expire_soon(kit, user)
        fault = {"status": 503, "count": 1, "delay": 5, "path_prefix": "/api/token"}
        await fake.post("/_fake/faults", json=fault)
        started = time.monotonic()
        r = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert r.status_code == 502, r.text
        assert time.monotonic() - started < 4
        r = await client.get(f"/internal/connected/{user}", headers=service_headers())
        assert r.json() == {"connected": True}
        # once Spotify is quick again the same refresh token works
        r = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert r.status_code == 200, r.text


async def test_a_slow_spotify_call_leaves_the_event_loop_free(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve) as (client, _):
        user = oid()
        await connect(client, user, listener=7)
        await fake.post("/_fake/faults", json={"status": 503, "count": 1, "delay": 3})
        slow = asyncio.create_task(_search(client, user))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        r = await client.get(f"/internal/connected/{user}", headers=service_headers())
        assert r.json() == {"connected": True}
        assert time.monotonic() - started < 2.0  # not stuck behind the Spotify call
        assert not slow.done()
        assert (await slow).status_code == 200  # the 503 was retried


async def test_spotify_calls_beyond_the_pool_wait_for_a_thread(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    async with _served(music_settings, serve, spotify_threads=1) as (client, _):
        user = oid()
        await connect(client, user, listener=7)
        await fake.post("/_fake/faults", json={"status": 503, "count": 2, "delay": 1})
        started = time.monotonic()
        answers = await asyncio.gather(_search(client, user), _search(client, user))
        assert [a.status_code for a in answers] == [200, 200]
        # one thread: the two slow answers came one after the other, not side by side
        assert time.monotonic() - started >= 2.0


async def test_spotipys_cache_reads_the_stored_token(
    music_settings: Callable[..., Any], serve: Any
) -> None:
    async with _served(music_settings, serve) as (client, kit):
        user = oid()
        await connect(client, user, listener=2)
        doc = await kit.database["tokens"].find_one({"_id": user})

        async def unused(token_info: dict[str, Any]) -> None:
            raise AssertionError("nothing is written here")

        def cache(user_id: str) -> Any:
            return tokens.cache(kit.database, settings=kit.settings, user_id=user_id, write=unused)

        # spotipy reads its cache from a thread of the pool
        info = await asyncio.to_thread(cache(user).get_cached_token)
        assert info["access_token"] == tokens.decrypt(kit.settings, doc["access"])
        assert info["refresh_token"] == tokens.decrypt(kit.settings, doc["refresh"])
        expires = doc["expiresAt"].replace(tzinfo=datetime.UTC)
        assert info["expires_at"] == int(expires.timestamp())
        assert info["scope"] == "user-top-read"
        assert await asyncio.to_thread(cache(oid()).get_cached_token) is None
