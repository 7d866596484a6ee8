"""Helpers for the music service tests: the OAuth dance against the fake, waiting, events."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from bson import ObjectId

from rhime.kit import identity
from rhime.music import population as pop
from tests.support import SECRET, auth_headers

JSON = {"accept": "application/json"}
# the fake's default population (RHIME_FAKE_SPOTIFY_* unset): 1000 listeners, 10 communities
SPEC = pop.PopulationSpec(seed=1, users=1000, communities=10)


def oid() -> str:
    return str(ObjectId())


def listeners(community: int, count: int, *, skip: int = 0) -> list[int]:
    """Fake listeners planted in one taste community."""
    found = [i for i in range(SPEC.users) if pop.community_of(SPEC, i) == community]
    return found[skip : skip + count]


def service_headers(service: str = "gateway") -> dict[str, str]:
    who = identity.Identity(user_id="", service=service)
    return {identity.HEADER: identity.encode(who, secret=SECRET)}


async def authorize(spotify: httpx.AsyncClient, user_id: str, *, listener: int) -> str:
    """Start the dance as `user_id`; the fake consents as `listener`. Returns the callback
    URL (with code and state) that Spotify sends the browser to."""
    r = await spotify.get("/api/spotify/authorize", headers=auth_headers(user_id) | JSON)
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(f"{url}&{urlencode({'login_hint': listener})}")
    assert consent.status_code == 302, consent.text
    return str(consent.headers["location"])


async def connect(spotify: httpx.AsyncClient, user_id: str, *, listener: int) -> httpx.Response:
    callback = await authorize(spotify, user_id, listener=listener)
    return await spotify.get(callback, headers=auth_headers(user_id))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
