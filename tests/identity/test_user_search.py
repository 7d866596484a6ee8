"""Finding people: the user service's search index (real Redis and MongoDB-wire store), called
directly and through the gateway in front of real auth and user services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from bson import ObjectId

from rhime import blocking, events
from rhime.auth import app as auth_app
from rhime.gateway import app as gateway_app
from rhime.runtime import servers
from rhime.user import app as user_app
from rhime.user import profiles, search
from tests.identity.test_gateway_proxy import ACCESS_SECRET, bearer, spotify_double
from tests.support import auth_headers, eventually


def test_normalise_ignores_case_accents_and_spacing() -> None:
    assert search.normalise("  Ána   MARÍA ") == "ana maria"
    assert search.normalise("Ǆemal Øre ﬁn") == "dzemal øre fin"  # NFKD splits ligatures
    assert search.normalise("STRASSE Straße") == "strasse strasse"  # casefold, not lower


def test_terms_are_the_user_name_each_word_and_the_whole_name() -> None:
    doc = {"user_name": "Ana.Music", "first_name": "maría", "last_name": "lópez"}
    assert search.terms(doc) == ["ana.music", "lopez", "maria", "maria lopez"]
    assert search.terms({"user_name": "bo", "first_name": "bo"}) == ["bo"]


@pytest.mark.parametrize("q", ["", "   ", "x" * 51, "a\x00b", "@", "\u0301"])
def test_bad_queries_are_refused(q: str) -> None:
    with pytest.raises(Exception, match="q must be 1 to 50 characters"):
        search.query(q)


def test_queries_are_trimmed_and_normalised() -> None:
    assert search.query("  @MARÍ ") == "mari"
    assert search.query("x" * 50) == "x" * 50


@pytest.fixture
async def users(
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    settings = make_settings(
        user_app.Settings,
        component="user",
        s3_endpoint_url=s3_url,
        s3_bucket="b" + make_settings().namespace,
    )
    served = await serve(user_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        client.app = served.app  # type: ignore[attr-defined]
        yield client


def kit_of(client: httpx.AsyncClient) -> Any:
    return client.app.state.kit  # type: ignore[attr-defined]


async def person(client: httpx.AsyncClient, user_name: str, first: str, last: str = "") -> str:
    """A profile as user.created makes it, then named by its owner."""
    uid = str(ObjectId())
    await profiles.create(kit_of(client), user_id=uid, user_name=user_name)
    body = {"firstName": first, "lastName": last}
    r = await client.patch(f"/api/users/{uid}", json=body, headers=auth_headers(uid))
    assert r.status_code == 200, r.text
    return uid


async def found(client: httpx.AsyncClient, q: str, after: str | None = None) -> dict[str, Any]:
    params = {"q": q, **({"after": after} if after else {})}
    r = await client.get("/api/users/search", params=params, headers=auth_headers(str(ObjectId())))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def names(body: dict[str, Any]) -> list[str]:
    return [u["userName"] for u in body["users"]]


async def test_finds_by_user_name_and_any_word_of_the_display_name(
    users: httpx.AsyncClient,
) -> None:
    ana = await person(users, "ana.music", "Maria", "Lopez")
    await person(users, "bob", "Robert", "Marley")
    await person(users, "zed", "Zed")
    body = await found(users, "ANA")
    assert body == {
        "users": [
            {
                "userId": ana,
                "userName": "ana.music",
                "displayName": "Maria Lopez",
                "profileImage": profiles.DEFAULT_AVATAR,
            }
        ],
        "next": None,
    }
    assert names(await found(users, "lóp")) == ["ana.music"]
    assert names(await found(users, "@mari")) == ["ana.music"]
    assert names(await found(users, "MARÍA  L")) == ["ana.music"]
    # "mar" matches María (first name) and Marley (last name): each person once
    assert names(await found(users, "mar")) == ["ana.music", "bob"]
    assert names(await found(users, "music")) == []  # a userName matches from its start
    assert names(await found(users, "zz")) == []


async def test_renamed_and_removed_people_are_not_found_by_what_they_were(
    users: httpx.AsyncClient,
) -> None:
    uid = await person(users, "carla", "Carla", "Bruni")
    kit = kit_of(users)
    r = await users.patch(
        f"/api/users/{uid}", json={"firstName": "Dora", "lastName": ""}, headers=auth_headers(uid)
    )
    assert r.status_code == 200
    assert names(await found(users, "bruni")) == []
    assert names(await found(users, "carl")) == ["carla"]  # still her userName
    assert names(await found(users, "dora")) == ["carla"]
    # an entry whose profile is gone is skipped, and dropped from the index
    other = await person(users, "dorian", "Dorian")
    await kit.database[profiles.PROFILES].delete_one({"_id": other})
    assert names(await found(users, "dor")) == ["carla"]
    left = await kit.redis.zrangebylex(kit.key("user-search", "index"), "[dorian", "[dorian\xff")
    assert left == []
    # entries can be removed outright (an account that must not be found any more)
    doc = await profiles.get(kit, user_id=uid)
    await search.unindex(kit, user_id=uid, profile=doc)
    assert names(await found(users, "dora")) == []


async def test_pages_follow_the_cursor_without_repeats(users: httpx.AsyncClient) -> None:
    kit = kit_of(users)
    made = []
    for n in range(search.PAGE + 5):
        uid = str(ObjectId())
        await profiles.create(kit, user_id=uid, user_name=f"pg{n:03}")
        made.append(f"pg{n:03}")
    first = await found(users, "pg")
    assert names(first) == made[: search.PAGE]
    assert first["next"]
    second = await found(users, "pg", after=first["next"])
    assert names(second) == made[search.PAGE :]
    assert second["next"] is None
    for bad in ("%%%", "bm90IGEgY3Vyc29y"):  # not base64; base64 of "not a cursor"
        r = await users.get(
            "/api/users/search",
            params={"q": "pg", "after": bad},
            headers=auth_headers(str(ObjectId())),
        )
        assert r.status_code == 400
        assert r.json() == {"errors": [{"msg": "Invalid after", "field": "after"}]}


async def test_a_page_skips_gone_people_and_fills_up_from_further_on(
    users: httpx.AsyncClient,
) -> None:
    kit = kit_of(users)
    made = {}
    for n in range(search.PAGE + 2):
        uid = str(ObjectId())
        await profiles.create(kit, user_id=uid, user_name=f"st{n:03}")
        made[f"st{n:03}"] = uid
    for name in ("st000", "st001", "st005"):
        await kit.database[profiles.PROFILES].delete_one({"_id": made.pop(name)})
    body = await found(users, "st")
    assert names(body) == sorted(made)
    assert body["next"] is None


async def test_a_lost_index_is_rebuilt_from_the_profiles(users: httpx.AsyncClient) -> None:
    await person(users, "eve", "Evelyn")
    kit = kit_of(users)
    await kit.redis.delete(kit.key("user-search", "index"))
    assert names(await found(users, "evel")) == []
    assert await search.rebuild(kit, collection=profiles.PROFILES) == 1
    assert names(await found(users, "evel")) == ["eve"]


async def test_bad_queries_get_the_envelope(users: httpx.AsyncClient) -> None:
    for params in ({}, {"q": "  "}, {"q": "y" * 51}):
        r = await users.get(
            "/api/users/search", params=params, headers=auth_headers(str(ObjectId()))
        )
        assert r.status_code == 400, params
        assert r.json() == {"errors": [{"msg": "q must be 1 to 50 characters.", "field": "q"}]}
    assert (await users.get("/api/users/search", params={"q": "a"})).status_code == 401


@pytest.fixture
async def site(
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in front of real auth and user services (Spotify: a double, all connected)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    connected = _Everyone()
    spotify = await serve(spotify_double(connected), wait_ready=False)
    auth = await serve(
        auth_app.create(
            make_settings(auth_app.Settings, component="auth", access_token_secret=ACCESS_SECRET)
        )
    )
    user = await serve(
        user_app.create(
            make_settings(
                user_app.Settings,
                component="user",
                s3_endpoint_url=s3_url,
                s3_bucket="b" + make_settings().namespace,
            )
        )
    )
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={
            "auth": auth.url,
            "user": user.url,
            "spotify": spotify.url,
            "web": f"http://127.0.0.1:{servers.free_port()}",
        },
        service_url_template="http://127.0.0.1:1",
        rate_limit_ip=1000,
        rate_limit_user=12,
    )
    gateway = await serve(gateway_app.create(settings))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        client.user_kit = user.app.state.kit  # type: ignore[attr-defined]
        yield client


class _Everyone(set[str]):
    def __contains__(self, _: object) -> bool:
        return True


async def test_search_through_the_gateway_is_signed_in_and_rate_limited(
    site: httpx.AsyncClient,
) -> None:
    signup = {"userName": "Nuria", "email": "nuria@example.com", "password": "s3cret!pw"}
    r = await site.post("/api/auth/signup", json=signup)
    assert r.status_code == 201
    uid = r.json()["userId"]
    r = await site.post("/api/auth/signin", json={"userName": "nuria", "password": "s3cret!pw"})
    assert r.status_code == 200, r.text
    token = r.json()["accessToken"]
    site.cookies.clear()
    assert (await site.get("/api/users/search", params={"q": "nu"})).status_code == 401

    async def profiled() -> None:  # the profile follows user.created
        kit = site.user_kit  # type: ignore[attr-defined]
        assert await kit.database[profiles.PROFILES].find_one({"_id": uid})

    await eventually(profiled)
    r = await site.get("/api/users/search", params={"q": "NU"}, headers=bearer(token))
    assert r.status_code == 200
    assert [u["userName"] for u in r.json()["users"]] == ["Nuria"]
    r = await site.get("/api/users/search", params={"q": ""}, headers=bearer(token))
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "q"
    burst = [
        site.get("/api/users/search", params={"q": "n"}, headers=bearer(token)) for _ in range(15)
    ]
    statuses = await asyncio.gather(*burst)
    assert 429 in {s.status_code for s in statuses}


async def test_people_who_block_each_other_never_find_each_other(
    users: httpx.AsyncClient,
) -> None:
    """From `user.blocked` on, neither finds the other (both ways); others still find both;
    `user.unblocked` (a late `user.blocked` changes nothing then) lets them find each other
    again, and a deleted account's blocks leave nothing behind."""
    ana = await person(users, "blockana", "Ana")
    bo = await person(users, "blockbo", "Bo")
    bus = kit_of(users).require_bus()

    async def finds(viewer: str, q: str) -> list[str]:
        r = await users.get("/api/users/search", params={"q": q}, headers=auth_headers(viewer))
        assert r.status_code == 200, r.text
        return [u["userName"] for u in r.json()["users"]]

    blocked = events.UserBlocked(id="b1", blocker_id=ana, blocked_id=bo, version=1)
    await bus.publish(blocked)

    async def hidden() -> None:
        assert await finds(bo, "block") == ["blockbo"]
        assert await finds(ana, "block") == ["blockana"]

    await eventually(hidden)
    assert await finds(str(ObjectId()), "block") == ["blockana", "blockbo"]
    await bus.publish(events.UserUnblocked(id="u2", blocker_id=ana, blocked_id=bo, version=2))
    await bus.publish(blocked.model_copy(update={"id": "b1-late"}))

    async def shown() -> None:
        assert await finds(bo, "blocka") == ["blockana"]
        assert await finds(ana, "blockb") == ["blockbo"]

    await eventually(shown)
    await bus.publish(events.UserBlocked(id="b3", blocker_id=bo, blocked_id=ana, version=1))
    await eventually(hidden)
    await bus.publish(events.UserDeleted(id="d", user_id=bo))

    async def forgotten() -> None:
        left = kit_of(users).database[blocking.COLLECTION].find({})
        assert [doc async for doc in left if bo in repr(doc)] == []

    await eventually(forgotten)
