"""spotipy, which uses requests, against the fake served by uvicorn on a loopback port."""

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import spotipy
import uvicorn
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyOAuth

from rhime.fakespotify.app import FakeSpotifySettings, create_app
from rhime.music import population as pop

SETTINGS = FakeSpotifySettings(seed=4, population=40, communities=4)
REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(SETTINGS), log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake Spotify did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(autouse=True)
def reset(base_url: str) -> None:
    httpx.post(f"{base_url}/_fake/reset").raise_for_status()


def oauth(base_url: str, **kwargs: object) -> SpotifyOAuth:
    class FakeOAuth(SpotifyOAuth):  # type: ignore[misc]
        OAUTH_AUTHORIZE_URL = f"{base_url}/authorize"
        OAUTH_TOKEN_URL = f"{base_url}/api/token"

    return FakeOAuth(
        client_id=SETTINGS.client_id,
        client_secret=SETTINGS.client_secret,
        redirect_uri=REDIRECT,
        scope="user-top-read",
        state="st",
        show_dialog=True,
        open_browser=False,
        cache_handler=MemoryCacheHandler(),
        **kwargs,
    )


def consent(base_url: str, auth: SpotifyOAuth, *, login_hint: str | None = None) -> str:
    url = auth.get_authorize_url()
    if login_hint:
        url += f"&login_hint={login_hint}"
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    state, code = auth.parse_auth_response_url(location)
    assert state == "st"
    assert isinstance(code, str)
    return code


def client(base_url: str, auth: SpotifyOAuth, **kwargs: object) -> spotipy.Spotify:
    sp = spotipy.Spotify(auth_manager=auth, **kwargs)
    sp.prefix = f"{base_url}/v1/"
    return sp


def test_code_flow_and_top_items_through_spotipy(base_url: str) -> None:
    auth = oauth(base_url)
    code = consent(base_url, auth, login_hint="listener000005")
    token = auth.get_access_token(code, as_dict=False, check_cache=False)
    assert isinstance(token, str)

    sp = client(base_url, auth)
    assert sp.current_user()["id"] == pop.user_id(5)

    page = sp.current_user_top_artists(limit=10, time_range="medium_term")
    artists = list(page["items"])
    while page["next"]:
        page = sp.next(page)
        artists.extend(page["items"])
    expected = pop.user_taste(pop.PopulationSpec(seed=4, users=40, communities=4), 5)
    assert [a["id"] for a in artists] == [a.id for a in expected.artists]

    found = sp.artists([a["id"] for a in artists[:3]])["artists"]
    assert [a["genres"] for a in found] == [list(a.genres) for a in expected.artists[:3]]
    assert sp.search("a", type="track", limit=3)["tracks"]["limit"] == 3


def test_replayed_code_is_refused_with_spotify_error(base_url: str) -> None:
    auth = oauth(base_url)
    code = consent(base_url, auth)
    auth.get_access_token(code, as_dict=False, check_cache=False)

    with pytest.raises(spotipy.SpotifyOauthError) as raised:
        auth.get_access_token(code, as_dict=False, check_cache=False)
    assert raised.value.error == "invalid_grant"
    assert raised.value.error_description == "Invalid authorization code"


def test_spotipy_keeps_rotated_refresh_tokens(base_url: str) -> None:
    auth = oauth(base_url)
    auth.get_access_token(consent(base_url, auth), as_dict=False, check_cache=False)
    first = auth.cache_handler.get_cached_token()["refresh_token"]

    once = auth.refresh_access_token(first)
    assert once["refresh_token"] == first  # not rotated: spotipy keeps the old one
    twice = auth.refresh_access_token(first)
    assert twice["refresh_token"] != first  # rotated, and the old one is revoked
    with pytest.raises(spotipy.SpotifyOauthError, match="Invalid refresh token"):
        auth.refresh_access_token(first)
    assert auth.refresh_access_token(twice["refresh_token"])["access_token"]


def test_too_many_ids_is_a_readable_spotify_exception(base_url: str) -> None:
    auth = oauth(base_url)
    auth.get_access_token(consent(base_url, auth), as_dict=False, check_cache=False)
    sp = client(base_url, auth)

    with pytest.raises(spotipy.SpotifyException) as raised:
        sp._get("artists", ids=",".join(f"id{i}" for i in range(51)))
    assert raised.value.http_status == 400
    assert "Too many ids requested" in raised.value.msg


def test_spotipy_waits_out_429_with_retry_after(base_url: str) -> None:
    auth = oauth(base_url)
    auth.get_access_token(consent(base_url, auth), as_dict=False, check_cache=False)
    sp = client(base_url, auth)
    httpx.post(
        f"{base_url}/_fake/faults", json={"status": 429, "retry_after": 1, "count": 1}
    ).raise_for_status()

    started = time.monotonic()
    assert sp.current_user()["id"]
    waited = time.monotonic() - started

    stats = httpx.get(f"{base_url}/_fake/stats").json()
    assert stats["v1_requests"] == 2  # the 429, then the retry
    assert stats["faults"] == []
    assert waited >= 1.0  # Retry-After was honoured, not a retry at once


def test_spotipy_retries_5xx_then_reports_what_it_could_not_retry(base_url: str) -> None:
    auth = oauth(base_url)
    auth.get_access_token(consent(base_url, auth), as_dict=False, check_cache=False)
    sp = client(base_url, auth)

    httpx.post(f"{base_url}/_fake/faults", json={"status": 503, "count": 2}).raise_for_status()
    assert sp.current_user()["id"]
    assert httpx.get(f"{base_url}/_fake/stats").json()["v1_requests"] == 3

    # without retries the 503 reaches the caller with Spotify's message
    no_retry = client(base_url, auth, retries=0, status_retries=0, status_forcelist=(400,))
    httpx.post(f"{base_url}/_fake/faults", json={"status": 503, "count": 1}).raise_for_status()
    with pytest.raises(spotipy.SpotifyException) as raised:
        no_retry.current_user()
    assert raised.value.http_status == 503
    assert "Service unavailable" in raised.value.msg


def test_unknown_client_cannot_get_tokens(base_url: str) -> None:
    auth = oauth(base_url)
    code = consent(base_url, auth)
    auth.client_secret = "wrong"
    with pytest.raises(spotipy.SpotifyOauthError) as raised:
        auth.get_access_token(code, as_dict=False, check_cache=False)
    assert raised.value.error == "invalid_client"
