"""`GET /api/spotify/artists`: artists' pictures and links from Spotify, remembered a day."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from rhime.spotify.settings import Settings
from tests.music_services.music_helpers import connect, oid
from tests.support import auth_headers


@pytest.fixture
async def spotify(
    music_settings: Callable[..., Any], serve: Any, fake: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    port = servers.free_port()
    settings = music_settings(Settings, public_url=f"http://127.0.0.1:{port}")
    served = await serve(spotify_app.create(settings), port=port)
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield client


async def test_artists_come_with_pictures_in_the_order_asked_then_from_the_cache(
    spotify: httpx.AsyncClient, fake: httpx.AsyncClient
) -> None:
    me = oid()
    await connect(spotify, me, listener=4)
    # some of the listener's artists, as Spotify lists them
    token = (await spotify.get("/api/spotify/token", headers=auth_headers(me))).json()["token"]
    mine = await fake.get("/v1/me/top/artists", headers={"Authorization": f"Bearer {token}"})
    top = [a["id"] for a in mine.json()["items"][:3]]
    assert len(top) == 3
    wanted = [top[2], "0unknownArtist000000000", top[0], top[2]]
    r = await spotify.get(
        "/api/spotify/artists", params={"ids": ",".join(wanted)}, headers=auth_headers(me)
    )
    assert r.status_code == 200, r.text
    found = r.json()["artists"]
    assert [a["id"] for a in found] == [top[2], top[0]]
    for artist in found:
        assert artist["name"]
        assert artist["image"].endswith(f"/_fake/image/{artist['id']}.svg")
        assert artist["url"] == f"https://open.spotify.com/artist/{artist['id']}"

    before = (await fake.get("/_fake/stats")).json()["v1_requests"]
    again = await spotify.get(
        "/api/spotify/artists", params={"ids": f"{top[0]},{top[2]}"}, headers=auth_headers(me)
    )
    assert [a["id"] for a in again.json()["artists"]] == [top[0], top[2]]
    assert (await fake.get("/_fake/stats")).json()["v1_requests"] == before


@pytest.mark.parametrize("ids", ["", ",", "a/b", ",".join(f"a{i}" for i in range(51))])
async def test_bad_artist_ids_are_400(spotify: httpx.AsyncClient, ids: str) -> None:
    me = oid()
    r = await spotify.get("/api/spotify/artists", params={"ids": ids}, headers=auth_headers(me))
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "ids"
