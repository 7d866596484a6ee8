"""The fake Spotify over direct ASGI calls: OAuth rules, paging, limits, faults."""

import base64
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rhime.fakespotify.app import FakeSpotifySettings, create_app
from rhime.music import population as pop

SETTINGS = FakeSpotifySettings(
    seed=3, population=50, communities=5, client_id="cid", client_secret="secret"
)
REDIRECT = "http://rhime.test/api/spotify/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as c:
        yield c


def basic(client_id: str = "cid", secret: str = "secret") -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def authorize(client: httpx.AsyncClient, **extra: str) -> dict[str, list[str]]:
    params = {
        "client_id": "cid",
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "user-top-read",
        "state": "s123",
        "show_dialog": "true",
    } | extra
    response = await client.get("/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def exchange(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post(
        "/api/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(),
    )


async def login(client: httpx.AsyncClient, **extra: str) -> dict[str, str]:
    query = await authorize(client, **extra)
    response = await exchange(client, query["code"][0])
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def bearer(token: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


async def test_authorize_redirects_with_code_and_state(client: httpx.AsyncClient) -> None:
    query = await authorize(client)
    assert query["state"] == ["s123"]
    assert len(query["code"][0]) > 20


async def test_authorize_rejects_an_unknown_client(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/authorize",
        params={"client_id": "nope", "response_type": "code", "redirect_uri": REDIRECT},
    )
    assert response.status_code == 400
    assert response.text == "INVALID_CLIENT: Invalid client"


async def test_authorize_reports_a_wrong_response_type_to_the_client(
    client: httpx.AsyncClient,
) -> None:
    query = await authorize(client, response_type="token")
    assert query["error"] == ["unsupported_response_type"]
    assert "code" not in query


async def test_users_are_chosen_in_order_or_by_login_hint(client: httpx.AsyncClient) -> None:
    ids = []
    for hint in (None, None, "listener000042", "7"):
        token = await login(client, **({"login_hint": hint} if hint else {}))
        me = (await client.get("/v1/me", headers=bearer(token))).json()
        ids.append(me["id"])
    assert ids == [pop.user_id(0), pop.user_id(1), pop.user_id(42), pop.user_id(7)]


async def test_code_is_single_use(client: httpx.AsyncClient) -> None:
    code = (await authorize(client))["code"][0]
    first = await exchange(client, code)
    assert first.status_code == 200
    assert first.json()["token_type"] == "Bearer"
    assert first.json()["expires_in"] == SETTINGS.token_lifetime
    assert first.json()["scope"] == "user-top-read"

    replay = await exchange(client, code)
    assert replay.status_code == 400
    assert replay.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }


async def test_token_requires_client_credentials(client: httpx.AsyncClient) -> None:
    code = (await authorize(client))["code"][0]
    wrong = await client.post(
        "/api/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(secret="guess"),
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_client", "error_description": "Invalid client"}

    # credentials in the body work too
    body = await client.post(
        "/api/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "cid",
            "client_secret": "secret",
        },
    )
    assert body.status_code == 200


async def test_code_is_bound_to_its_redirect_uri(client: httpx.AsyncClient) -> None:
    code = (await authorize(client))["code"][0]
    response = await client.post(
        "/api/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://evil"},
        headers=basic(),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_rotates_every_other_time(client: httpx.AsyncClient) -> None:
    token = await login(client)
    refresh = token["refresh_token"]
    seen_rotation = []
    for _ in range(4):
        response = await client.post(
            "/api/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            headers=basic(),
        )
        assert response.status_code == 200
        body = response.json()
        assert (await client.get("/v1/me", headers=bearer(body))).status_code == 200
        rotated = body.get("refresh_token")
        seen_rotation.append(rotated is not None)
        if rotated:
            old, refresh = refresh, rotated
            # the replaced refresh token is revoked
            stale = await client.post(
                "/api/token",
                data={"grant_type": "refresh_token", "refresh_token": old},
                headers=basic(),
            )
            assert stale.status_code == 400
            assert stale.json() == {
                "error": "invalid_grant",
                "error_description": "Invalid refresh token",
            }
    assert seen_rotation == [False, True, False, True]


async def test_v1_needs_a_valid_unexpired_bearer_token(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    missing = await client.get("/v1/me")
    assert missing.status_code == 401
    assert missing.json() == {"error": {"status": 401, "message": "No token provided"}}

    bogus = await client.get("/v1/me", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    assert bogus.json()["error"]["message"] == "Invalid access token"

    token = await login(client)
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    clock.now += SETTINGS.token_lifetime + 1
    expired = await client.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}


async def test_top_items_page_like_spotify(client: httpx.AsyncClient) -> None:
    token = await login(client, login_hint="3")
    taste = pop.user_taste(pop.PopulationSpec(seed=3, users=50, communities=5), 3)

    url: str | None = "/v1/me/top/tracks?limit=7&time_range=medium_term"
    collected: list[str] = []
    pages = []
    while url:
        page = (await client.get(url, headers=bearer(token))).json()
        pages.append(page)
        collected.extend(item["id"] for item in page["items"])
        url = page["next"]
    assert collected == [t.id for t in taste.tracks]
    first, last = pages[0], pages[-1]
    assert first["total"] == len(taste.tracks)
    assert first["limit"] == 7
    assert first["offset"] == 0
    assert first["previous"] is None
    assert first["next"].startswith("http://fake/v1/me/top/tracks?")
    assert "time_range=medium_term" in first["next"]
    assert "offset=7" in first["next"]
    assert last["next"] is None
    assert "offset=" in last["previous"]

    track = first["items"][0]
    assert {"id", "name", "artists", "album", "external_urls", "popularity", "uri"} <= set(track)
    assert track["album"]["images"][0]["url"].startswith("http://fake/")
    assert [a["id"] for a in track["artists"]] == list(taste.tracks[0].artist_ids)


async def test_top_artists_carry_genres_and_time_ranges_overlap(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, login_hint="4")
    ranges = {}
    for time_range in ("short_term", "medium_term", "long_term"):
        page = (
            await client.get(
                "/v1/me/top/artists",
                params={"time_range": time_range, "limit": 50},
                headers=bearer(token),
            )
        ).json()
        ranges[time_range] = [a["id"] for a in page["items"]]
        artist = page["items"][0]
        assert {"id", "name", "genres", "popularity", "images", "external_urls"} <= set(artist)
        assert artist["genres"]
    short, medium = set(ranges["short_term"]), set(ranges["medium_term"])
    assert ranges["short_term"] != ranges["medium_term"]
    assert len(short & medium) >= len(medium) // 2


async def test_limits_are_enforced_in_spotify_error_shape(client: httpx.AsyncClient) -> None:
    token = await login(client)
    too_many = await client.get("/v1/me/top/artists?limit=51", headers=bearer(token))
    assert too_many.status_code == 400
    assert too_many.json()["error"]["status"] == 400
    assert "limit" in too_many.json()["error"]["message"]

    bad_range = await client.get("/v1/me/top/artists?time_range=forever", headers=bearer(token))
    assert bad_range.status_code == 400


async def test_artists_and_tracks_by_ids(client: httpx.AsyncClient) -> None:
    token = await login(client)
    cat = pop.catalogue(pop.PopulationSpec(seed=3, users=50, communities=5))
    artist_ids = list(cat.artists)[:50]

    found = (
        await client.get(
            "/v1/artists",
            params={"ids": ",".join([*artist_ids[:2], "unknown"])},
            headers=bearer(token),
        )
    ).json()
    assert [a["id"] if a else None for a in found["artists"]] == [*artist_ids[:2], None]

    ok = await client.get(
        "/v1/artists", params={"ids": ",".join(artist_ids)}, headers=bearer(token)
    )
    assert ok.status_code == 200
    assert len(ok.json()["artists"]) == 50

    over = await client.get(
        "/v1/artists", params={"ids": ",".join([*artist_ids, "x"])}, headers=bearer(token)
    )
    assert over.status_code == 400
    assert over.json() == {"error": {"status": 400, "message": "Too many ids requested"}}

    track_ids = list(cat.tracks)[:3]
    tracks = (
        await client.get("/v1/tracks", params={"ids": ",".join(track_ids)}, headers=bearer(token))
    ).json()
    assert [t["id"] for t in tracks["tracks"]] == track_ids


async def test_search_finds_tracks_by_name(client: httpx.AsyncClient) -> None:
    token = await login(client)
    cat = pop.catalogue(pop.PopulationSpec(seed=3, users=50, communities=5))
    target = next(iter(cat.tracks.values()))

    response = await client.get(
        "/v1/search",
        params={"q": target.name.lower(), "type": "track", "limit": 5},
        headers=bearer(token),
    )
    body = response.json()["tracks"]
    assert body["limit"] == 5
    assert body["total"] >= 1
    assert all(
        target.name.lower() in item["name"].lower() or item["artists"] for item in body["items"]
    )
    matching = [t for t in cat.tracks.values() if target.name.lower() in t.name.lower()]
    assert body["total"] >= len(matching)
    assert len(body["items"]) == min(5, body["total"])


async def test_faults_answer_the_next_requests_then_clear(client: httpx.AsyncClient) -> None:
    token = await login(client)
    set_fault = await client.post(
        "/_fake/faults", json={"status": 429, "retry_after": 3, "count": 2}
    )
    assert set_fault.status_code == 200

    for _ in range(2):
        limited = await client.get("/v1/me", headers=bearer(token))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200

    await client.post("/_fake/faults", json={"status": 503, "count": 5})
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 503
    await client.post("/_fake/reset")
    assert (await client.get("/v1/me")).status_code == 401  # tokens are gone too
    stats = (await client.get("/_fake/stats")).json()
    assert stats["faults"] == []
    assert stats["v1_requests"] == 1


async def test_a_delayed_fault_answers_late(client: httpx.AsyncClient) -> None:
    token = await login(client)
    await client.post("/_fake/faults", json={"status": 503, "delay": 0.5})
    started = time.monotonic()
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 503
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    assert time.monotonic() - started < 0.5


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RHIME_FAKE_SPOTIFY_POPULATION", "123")
    monkeypatch.setenv("RHIME_FAKE_SPOTIFY_CLIENT_ID", "from-env")
    settings = FakeSpotifySettings()
    assert settings.population == 123
    assert settings.client_id == "from-env"
    app = create_app()
    assert app.state.settings.client_id == "from-env"


async def test_image_links_use_the_public_url_and_api_links_the_callers() -> None:
    app = create_app(SETTINGS.model_copy(update={"public_url": "http://localhost:8090/"}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        token = await login(client, login_hint="2")
        page = (
            await client.get("/v1/me/top/artists", params={"limit": 2}, headers=bearer(token))
        ).json()
    artist = page["items"][0]
    assert artist["images"][0]["url"] == f"http://localhost:8090/_fake/image/{artist['id']}.svg"
    # the paging links are followed by the caller's server, so they keep its address
    assert page["next"].startswith("http://fake/v1/me/top/artists?")
    assert artist["href"].startswith("http://fake/v1/artists/")
