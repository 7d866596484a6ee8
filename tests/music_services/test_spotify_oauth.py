"""The spotify service against the fake Spotify: the OAuth dance, tokens at rest, refresh
with rotation, search with retries, top items and disconnection."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime.music.spotify import tokens
from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from rhime.spotify.settings import Settings
from tests.music_services.music_helpers import (
    JSON,
    authorize,
    connect,
    oid,
    query_of,
    service_headers,
)
from tests.support import SECRET, auth_headers, published, stream_gone
from tests.support import SPOTIFY_CLIENT_ID as CLIENT_ID
from tests.support import SPOTIFY_CLIENT_SECRET as CLIENT_SECRET


@pytest.fixture
async def spotify(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    port = servers.free_port()
    settings = music_settings(Settings, public_url=f"http://127.0.0.1:{port}")
    served = await serve(spotify_app.create(settings), port=port)
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield client, served.app.state.kit


async def test_connect_stores_encrypted_tokens_and_publishes(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = spotify
    user = oid()
    r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": False}

    r = await connect(client, user, listener=3)
    assert r.status_code == 302
    assert r.headers["location"] == "/"

    doc = await kit.database["tokens"].find_one({"_id": user})
    r = await client.get("/api/spotify/token", headers=auth_headers(user))
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # at rest the tokens are ciphertext, not the token itself
    assert token not in str(doc)
    assert tokens.decrypt(kit.settings, doc["access"]) == token
    assert datetime.datetime.fromisoformat(r.json()["expiresAt"]) > datetime.datetime.now(
        datetime.UTC
    )
    async with httpx.AsyncClient() as raw:
        me = await raw.get(
            f"{kit.settings.spotify_api_url}/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
    assert me.json()["id"] == "listener000003"

    r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": True}
    r = await client.get(f"/internal/connected/{user}", headers=auth_headers(user))
    assert r.status_code == 403

    found = await published(kit.settings, "user.authorized", expect=1)
    assert [e["user_id"] for e in found] == [user]
    assert found[0]["id"] == f"user.authorized:{user}:1"


async def test_authorize_redirects_to_spotify_with_state(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = spotify
    r = await client.get("/api/spotify/authorize", headers=auth_headers(oid()))
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(f"{kit.settings.spotify_accounts_url}/authorize?")
    params = query_of(location)
    assert params["scope"] == "user-top-read"
    assert params["redirect_uri"] == f"{kit.settings.public_url}/api/spotify/callback"
    assert params["client_id"] == kit.settings.spotify_client_id
    assert len(params["state"]) >= 20

    r = await client.get("/api/spotify/authorize")
    assert r.status_code == 401


async def test_the_browser_goes_to_the_public_accounts_url_and_the_code_is_exchanged_inside(
    music_settings: Callable[..., Any], serve: Any, spotify_url: str
) -> None:
    """In a cluster the browser reaches the accounts service on a forwarded port, the
    service on its in-cluster address."""
    port = servers.free_port()
    public = "http://localhost:8090"
    settings = music_settings(
        Settings, public_url=f"http://127.0.0.1:{port}", spotify_public_accounts_url=public
    )
    served = await serve(spotify_app.create(settings), port=port)
    user = oid()
    async with httpx.AsyncClient(base_url=served.url) as client:
        r = await client.get("/api/spotify/authorize", headers=auth_headers(user))
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith(f"{public}/authorize?")
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(location.replace(public, spotify_url, 1))
        assert consent.status_code == 302, consent.text
        r = await client.get(consent.headers["location"], headers=auth_headers(user))
        assert r.status_code == 302
        assert r.headers["location"] == "/"
        r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": True}


async def test_wrong_unknown_and_replayed_state_are_rejected(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = spotify
    alice, mallory = oid(), oid()
    callback = await authorize(client, alice, listener=1)

    # someone else finishing alice's dance
    r = await client.get(callback, headers=auth_headers(mallory))
    assert r.status_code == 302
    assert r.headers["location"] == "/connect?error=state_mismatch"

    # a state Rhime never issued
    params = query_of(callback)
    forged = f"/api/spotify/callback?code={params['code']}&state=forged"
    r = await client.get(forged, headers=auth_headers(alice) | JSON)
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"]

    r = await client.get(callback, headers=auth_headers(alice))
    assert r.headers["location"] == "/"
    # the same state a second time
    r = await client.get(callback, headers=auth_headers(alice))
    assert r.headers["location"] == "/connect?error=unknown_state"
    assert await kit.database["tokens"].count_documents({}) == 1
    assert await kit.database["tokens"].count_documents({"_id": mallory}) == 0


async def test_replayed_code_is_rejected(spotify: tuple[httpx.AsyncClient, Any]) -> None:
    client, kit = spotify
    user = oid()
    first = await authorize(client, user, listener=1)
    assert (await client.get(first, headers=auth_headers(user))).headers["location"] == "/"
    second = await authorize(client, user, listener=1)
    # a fresh state with the code already exchanged
    replay = (
        f"/api/spotify/callback?code={query_of(first)['code']}&state={query_of(second)['state']}"
    )
    r = await client.get(replay, headers=auth_headers(user))
    assert r.headers["location"] == "/connect?error=exchange_failed"
    doc = await kit.database["tokens"].find_one({"_id": user})
    assert doc["connection"] == 1


async def test_denied_consent_goes_back_to_the_connect_page(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = spotify
    user = oid()
    state = query_of(await authorize(client, user, listener=1))["state"]
    r = await client.get(
        f"/api/spotify/callback?error=access_denied&state={state}", headers=auth_headers(user)
    )
    assert r.headers["location"] == "/connect?error=access_denied"
    r = await client.get("/api/spotify/token", headers=auth_headers(user))
    assert r.status_code == 404


async def test_reconnecting_is_idempotent(spotify: tuple[httpx.AsyncClient, Any]) -> None:
    client, kit = spotify
    user = oid()
    assert (await connect(client, user, listener=2)).headers["location"] == "/"
    assert (await connect(client, user, listener=2)).headers["location"] == "/"
    assert await kit.database["tokens"].count_documents({"_id": user}) == 1
    doc = await kit.database["tokens"].find_one({"_id": user})
    assert doc["connection"] == 2
    assert not doc.get("_outbox")
    found = await published(kit.settings, "user.authorized", expect=2)
    assert sorted(e["id"] for e in found) == [
        f"user.authorized:{user}:1",
        f"user.authorized:{user}:2",
    ]


async def test_token_refreshes_near_expiry_and_keeps_rotated_refresh_token(
    spotify: tuple[httpx.AsyncClient, Any], fake: httpx.AsyncClient
) -> None:
    client, kit = spotify
    user = oid()
    await connect(client, user, listener=5)
    coll = kit.database["tokens"]
    first = (await client.get("/api/spotify/token", headers=auth_headers(user))).json()
    # far from expiry: the same token
    again = (await client.get("/api/spotify/token", headers=auth_headers(user))).json()
    assert again["token"] == first["token"]

    seen = {first["token"]}
    refresh_tokens = set()
    # the fake rotates the refresh token every second refresh and revokes the old one, so
    # the third refresh only works if the rotated one was kept
    for _ in range(3):
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
        await coll.update_one({"_id": user}, {"$set": {"expiresAt": soon}})
        r = await client.get("/api/spotify/token", headers=auth_headers(user))
        assert r.status_code == 200, r.text
        assert r.json()["token"] not in seen
        seen.add(r.json()["token"])
        doc = await coll.find_one({"_id": user})
        refresh_tokens.add(tokens.decrypt(kit.settings, doc["refresh"]))
    assert len(refresh_tokens) == 2
    stats = (await fake.get("/_fake/stats")).json()
    assert stats["token_requests"] == 4  # one exchange, three refreshes


async def test_revoked_refresh_token_disconnects(
    spotify: tuple[httpx.AsyncClient, Any], fake: httpx.AsyncClient
) -> None:
    client, kit = spotify
    user = oid()
    await connect(client, user, listener=5)
    await fake.post("/_fake/reset")  # forgets every grant, as a revocation would
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    await kit.database["tokens"].update_one({"_id": user}, {"$set": {"expiresAt": soon}})
    r = await client.get("/api/spotify/token", headers=auth_headers(user))
    assert r.status_code == 409
    r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": False}
    # revoked by Spotify closes the gate as a disconnection does
    found = await published(kit.settings, "user.disconnected", expect=1)
    assert [(e["id"], e["connection"]) for e in found] == [(f"user.disconnected:{user}:1", 1)]


async def _expire_soon(kit: Any, user: str) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    await kit.database["tokens"].update_one({"_id": user}, {"$set": {"expiresAt": soon}})


async def test_a_slow_refresh_is_not_repeated_by_a_concurrent_caller(
    spotify: tuple[httpx.AsyncClient, Any], fake: httpx.AsyncClient
) -> None:
    client, kit = spotify
    user = oid()
    await connect(client, user, listener=5)
    # one refresh first: the fake rotates (and revokes) the refresh token on the next one
    await _expire_soon(kit, user)
    assert (await client.get("/api/spotify/token", headers=auth_headers(user))).is_success
    await _expire_soon(kit, user)
    before = (await fake.get("/_fake/stats")).json()["token_requests"]
    # Spotify's token endpoint asks the first caller to come back in 17 s
    fault = {"status": 429, "count": 1, "retry_after": 17, "path_prefix": "/api/token"}
    await fake.post("/_fake/faults", json=fault)

    async def token() -> httpx.Response:
        return await client.get("/api/spotify/token", headers=auth_headers(user), timeout=60)

    first = asyncio.create_task(token())
    await asyncio.sleep(16)  # the first caller is still refreshing: a replica asks now
    second = await token()
    first_answer = await first
    assert first_answer.status_code == 200, first_answer.text
    assert second.status_code == 200, second.text
    assert second.json()["token"] == first_answer.json()["token"]
    # one refresh reached Spotify, and the user is still connected
    assert (await fake.get("/_fake/stats")).json()["token_requests"] == before + 1
    r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": True}


async def test_a_refresh_refused_after_a_reconnect_does_not_disconnect(
    spotify: tuple[httpx.AsyncClient, Any], fake: httpx.AsyncClient
) -> None:
    client, kit = spotify
    user = oid()
    await connect(client, user, listener=5)
    old = await kit.database["tokens"].find_one({"_id": user})
    await _expire_soon(kit, user)
    fault = {"status": 429, "count": 1, "retry_after": 2, "path_prefix": "/api/token"}
    await fake.post("/_fake/faults", json=fault)
    refreshing = asyncio.create_task(
        client.get("/api/spotify/token", headers=auth_headers(user), timeout=30)
    )
    await asyncio.sleep(0.5)
    # while that refresh waits, the user connects again, and the old grant's refresh token
    # is rotated away elsewhere: the waiting refresh will be refused with invalid_grant
    assert (await connect(client, user, listener=5)).headers["location"] == "/"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.decrypt(kit.settings, old["refresh"]),
    }
    for _ in range(2):
        r = await fake.post("/api/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
        assert r.status_code == 200, r.text
    r = await refreshing
    assert r.status_code == 200, r.text
    doc = await kit.database["tokens"].find_one({"_id": user})
    assert doc["connected"] is True
    assert r.json()["token"] == tokens.decrypt(kit.settings, doc["access"])


async def test_search_retries_429_and_5xx(
    spotify: tuple[httpx.AsyncClient, Any], fake: httpx.AsyncClient
) -> None:
    client, _ = spotify
    user = oid()
    await connect(client, user, listener=7)
    r = await client.get("/api/spotify/search", params={"q": "the"}, headers=auth_headers(user))
    assert r.status_code == 200, r.text
    tracks = r.json()["tracks"]
    assert 0 < len(tracks) <= 10
    assert set(tracks[0]) == {"id", "name", "artists", "url", "image"}
    assert tracks[0]["artists"][0]["id"]

    before = (await fake.get("/_fake/stats")).json()["v1_requests"]
    await fake.post("/_fake/faults", json={"status": 429, "count": 2, "retry_after": 0})
    await fake.post("/_fake/faults", json={"status": 503, "count": 2})
    r = await client.get(
        "/api/spotify/search", params={"q": "the", "limit": 3}, headers=auth_headers(user)
    )
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["tracks"]] == [t["id"] for t in tracks[:3]]
    assert (await fake.get("/_fake/stats")).json()["v1_requests"] == before + 5

    # a wait longer than we are willing to hold a request: passed on to the caller
    await fake.post("/_fake/faults", json={"status": 429, "count": 1, "retry_after": 3600})
    r = await client.get("/api/spotify/search", params={"q": "x"}, headers=auth_headers(user))
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3600"


async def test_retries_stop_at_the_calls_deadline(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> None:
    """A Retry-After the deadline cannot hold is passed on at once, not waited out after the
    gateway has given up on the request."""
    port = servers.free_port()
    settings = music_settings(
        Settings, public_url=f"http://127.0.0.1:{port}", spotify_request_seconds=1.0
    )
    served = await serve(spotify_app.create(settings), port=port)
    async with httpx.AsyncClient(base_url=served.url) as client:
        user = oid()
        await connect(client, user, listener=7)
        before = (await fake.get("/_fake/stats")).json()["v1_requests"]
        # 2 s is under spotify_max_retry_after (30 s) but over this call's 1 s
        await fake.post("/_fake/faults", json={"status": 429, "count": 1, "retry_after": 2})
        r = await client.get("/api/spotify/search", params={"q": "the"}, headers=auth_headers(user))
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "2"
        assert (await fake.get("/_fake/stats")).json()["v1_requests"] == before + 1


async def test_search_input_and_connection_errors(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = spotify
    user = oid()
    r = await client.get("/api/spotify/search", params={"q": "a"}, headers=auth_headers(user))
    assert r.status_code == 404
    await connect(client, user, listener=7)
    for params in ({}, {"q": ""}, {"q": "   "}, {"q": "a", "limit": 0}, {"q": "a", "limit": 51}):
        r = await client.get("/api/spotify/search", params=params, headers=auth_headers(user))
        assert r.status_code == 400, params
        assert r.json()["errors"]


async def test_disconnect_deletes_tokens(spotify: tuple[httpx.AsyncClient, Any]) -> None:
    client, kit = spotify
    user = oid()
    await connect(client, user, listener=8)
    r = await client.delete("/api/spotify/connection", headers=auth_headers(user))
    assert r.status_code == 204
    # the gateway re-issues the caller's cookie from this; everyone else hears the event
    assert r.headers["x-rhime-spotify-connected"] == "0"
    doc = await kit.database["tokens"].find_one({"_id": user})
    assert not doc.get("_outbox")
    assert "access" not in doc
    assert "refresh" not in doc
    assert (await client.get("/api/spotify/token", headers=auth_headers(user))).status_code == 404
    r = await client.get(f"/internal/connected/{user}", headers=service_headers())
    assert r.json() == {"connected": False}
    # again: nothing left to delete, still fine
    r = await client.delete("/api/spotify/connection", headers=auth_headers(user))
    assert r.status_code == 204
    # and connecting again publishes a new connection
    again = await connect(client, user, listener=8)
    assert again.headers["location"] == "/"
    assert again.headers["x-rhime-spotify-connected"] == "1"
    assert (await kit.database["tokens"].find_one({"_id": user}))["connection"] == 2
    # one disconnection, one event, whatever the repeats; connects carry their number
    gone = await published(kit.settings, "user.disconnected", expect=1)
    assert [(e["id"], e["user_id"], e["connection"]) for e in gone] == [
        (f"user.disconnected:{user}:1", user, 1)
    ]
    came = await published(kit.settings, "user.authorized", expect=2)
    assert sorted(e["connection"] for e in came) == [1, 2]


@pytest.mark.parametrize("key", ["x" * 44, "ZGV2LWtleQ==" + "=" * 32])
def test_an_encryption_key_that_is_no_fernet_key_fails_at_start_up(key: str) -> None:
    with pytest.raises(ValueError, match="Fernet key"):
        Settings(
            internal_secret=SECRET,
            spotify_client_id="id",
            spotify_client_secret="secret",
            encryption_key=key,
        )


async def test_connect_while_nats_refuses_succeeds_and_publishes_later(
    spotify: tuple[httpx.AsyncClient, Any],
) -> None:
    client, kit = spotify
    user = oid()
    async with stream_gone(kit.settings, "user"):
        r = await connect(client, user, listener=4)
        assert r.status_code == 302
        assert r.headers["location"] == "/"
    found = await published(kit.settings, "user.authorized", expect=1)
    assert [e["user_id"] for e in found] == [user]
