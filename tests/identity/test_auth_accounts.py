"""auth over HTTP, called directly (the gateway's part is tested in test_gateway_*)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rhime import events
from rhime.auth import accounts, tokens
from rhime.auth import app as auth_app
from tests.support import auth_headers

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"
GOOD = {"userName": "ana.music", "email": "Ana@Example.com", "password": "s3cret!pw"}


def auth_settings(make_settings: Callable[..., Any], **overrides: Any) -> Any:
    return make_settings(
        auth_app.Settings,
        component="auth",
        access_token_secret=ACCESS_SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        **overrides,
    )


@pytest.fixture
async def auth(make_settings: Callable[..., Any], serve: Any) -> AsyncIterator[httpx.AsyncClient]:
    served = await serve(auth_app.create(auth_settings(make_settings, signin_max_failures=3)))
    async with httpx.AsyncClient(base_url=served.url) as client:
        client.app = served.app  # type: ignore[attr-defined]
        yield client


async def test_sign_up_stores_the_account_and_publishes(auth: httpx.AsyncClient) -> None:
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    r = await auth.post("/api/auth/signup", json=GOOD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["userName"] == "ana.music"
    assert body["email"] == "ana@example.com"
    assert body["spotify"] is False
    assert len(body["userId"]) == 24
    doc = await kit.database[accounts.USERS].find_one({"_id": body["userId"]})
    assert doc["password"].startswith("$argon2id$")
    assert "s3cret!pw" not in str(doc)
    info = await kit.require_bus().js.get_last_msg(
        f"{kit.settings.namespace.upper()}_USER", kit.settings.subject("user.created")
    )
    event = events.UserCreated.model_validate_json(info.data)
    assert event.id == f"user.created:{body['userId']}"
    assert (event.user_name, event.email) == ("ana.music", "ana@example.com")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"userName": "a"}, "userName"),
        ({"userName": "x" * 21}, "userName"),
        ({"userName": ".ana"}, "userName"),
        ({"userName": "ana."}, "userName"),
        ({"userName": "an..a"}, "userName"),
        ({"userName": "an a"}, "userName"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.toolong"}, "email"),
        ({"password": "short1!"[:6]}, "password"),
        ({"password": "nospecial1"}, "password"),
        ({"password": "nodigit!!"}, "password"),
        ({"password": "12345678!"}, "password"),
        ({"password": "has\tab1!"}, "password"),
        ({"password": "x1!" * 43}, "password"),
        ({"userName": None}, "userName"),
        ({"email": None}, "email"),
        ({"password": None}, "password"),
    ],
)
async def test_sign_up_validation(
    auth: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    r = await auth.post("/api/auth/signup", json=body)
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    assert await kit.database[accounts.USERS].count_documents({}) == 0


async def test_duplicates_are_refused_even_when_racing(auth: httpx.AsyncClient) -> None:
    same = [{**GOOD, "userName": f"Ana{n}", "email": "race@example.com"} for n in range(6)] + [
        {**GOOD, "userName": "Racer", "email": f"r{n}@example.com"} for n in range(6)
    ]
    results = await asyncio.gather(*(auth.post("/api/auth/signup", json=b) for b in same))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 201] + [400] * 10
    messages = {r.json()["errors"][0]["msg"] for r in results if r.status_code == 400}
    assert messages == {"The email already exists", "The userName already exists"}
    # userName uniqueness ignores case
    r = await auth.post("/api/auth/signup", json={**GOOD, "userName": "RACER", "email": "z@x.io"})
    assert r.json() == {"errors": [{"msg": "The userName already exists", "field": "userName"}]}


async def test_sign_in_by_user_name_or_email(auth: httpx.AsyncClient) -> None:
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    for body in (
        {"userName": "ANA.music", "password": GOOD["password"]},
        {"userName": "ana@example.com", "password": GOOD["password"]},
        {"email": "ana@example.com", "password": GOOD["password"]},
    ):
        r = await auth.post("/api/auth/signin", json=body)
        assert r.status_code == 200, r.text
        body_out = r.json()
        assert body_out["userId"] == user_id
        claims = tokens.verify(body_out["accessToken"], secret=ACCESS_SECRET)
        assert (claims.user_id, claims.user_name, claims.spotify) == (user_id, "ana.music", False)
        assert claims.expires_at - time.time() > 86400 - 60
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"accessToken={body_out['accessToken']};")
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", "Max-Age=86400"):
            assert flag in cookie


async def test_sign_in_failures(auth: httpx.AsyncClient) -> None:
    await auth.post("/api/auth/signup", json=GOOD)
    r = await auth.post("/api/auth/signin", json={"password": "x"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"] == "userName or email is required"
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "password"
    r = await auth.post("/api/auth/signin", json={"userName": "nobody", "password": "s3cret!pw"})
    assert r.status_code == 400
    assert r.json() == {"errors": [{"msg": "The userName, email or password is incorrect."}]}
    assert "set-cookie" not in r.headers


async def test_repeated_failures_are_limited(auth: httpx.AsyncClient) -> None:
    await auth.post("/api/auth/signup", json=GOOD)
    wrong = {"userName": "ana.music", "password": "wrong!pw1"}
    assert [(await auth.post("/api/auth/signin", json=wrong)).status_code for _ in range(3)] == [
        400,
        400,
        400,
    ]
    r = await auth.post("/api/auth/signin", json={**wrong, "password": GOOD["password"]})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # another account is not affected
    await auth.post("/api/auth/signup", json={**GOOD, "userName": "bob", "email": "b@x.io"})
    ok = await auth.post("/api/auth/signin", json={"userName": "bob", "password": "s3cret!pw"})
    assert ok.status_code == 200


async def test_me_and_sign_out(auth: httpx.AsyncClient) -> None:
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    assert (await auth.get("/api/auth/me")).status_code == 401
    r = await auth.get("/api/auth/me", headers=auth_headers(user_id))
    assert r.status_code == 200
    assert r.json() == {
        "userId": user_id,
        "userName": "ana.music",
        "email": "ana@example.com",
        "spotify": False,
    }
    forged = auth_headers(user_id, secret="someone-else-secret-0123456789-abcdefghij")
    assert (await auth.get("/api/auth/me", headers=forged)).status_code == 401
    r = await auth.post("/api/auth/signout", headers=auth_headers(user_id))
    assert r.status_code == 200
    assert 'accessToken=""' in r.headers["set-cookie"]
    assert "Max-Age=0" in r.headers["set-cookie"]
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    assert await kit.redis.get(tokens.revoked_key(kit.settings.namespace, user_id))
    # signing out without a session just clears the cookie
    assert (await auth.post("/api/auth/signout")).status_code == 200


async def test_user_authorized_sets_spotify_once(auth: httpx.AsyncClient) -> None:
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    bus = kit.require_bus()
    event = events.UserAuthorized(id=f"user.authorized:{user_id}", user_id=user_id)
    for _ in range(2):  # delivered twice: same single effect
        await bus.js.publish(bus.subject(event.SUBJECT), event.model_dump_json().encode())
    for _ in range(100):
        r = await auth.get("/api/auth/me", headers=auth_headers(user_id))
        if r.json()["spotify"]:
            break
        await asyncio.sleep(0.05)
    assert r.json()["spotify"] is True
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert tokens.verify(r.json()["accessToken"], secret=ACCESS_SECRET).spotify is True


def test_settings_need_a_long_access_secret(make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="access_token_secret"):
        make_settings(auth_app.Settings, access_token_secret="short")
