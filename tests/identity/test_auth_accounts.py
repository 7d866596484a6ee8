"""auth over HTTP, called directly (the gateway's part is tested in test_gateway_*)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from rhime import events
from rhime.auth import accounts, passwords
from rhime.auth import app as auth_app
from rhime.kit import access_tokens, client_address, outbox
from tests.support import SECRET, auth_headers, published

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"
GOOD = {"userName": "ana.music", "email": "Ana@Example.com", "password": "s3cret!pw"}


def auth_settings(make_settings: Callable[..., Any], **overrides: Any) -> Any:
    cheap = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
    return make_settings(
        auth_app.Settings,
        component="auth",
        access_token_secret=ACCESS_SECRET,
        **(cheap | overrides),
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
    assert event.user_name == "ana.music"
    assert b"ana@example.com" not in info.data  # the email stays with auth


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
        claims = access_tokens.verify(body_out["accessToken"], secret=ACCESS_SECRET)
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
    assert await kit.redis.get(access_tokens.revoked_key(kit.settings.namespace, user_id))
    # signing out without a session just clears the cookie
    assert (await auth.post("/api/auth/signout")).status_code == 200


async def test_deleting_the_account(auth: httpx.AsyncClient) -> None:
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    me = auth_headers(user_id)

    async def delete(password: Any, headers: dict[str, str] = me) -> httpx.Response:
        return await auth.request(
            "DELETE", "/api/auth/me", json={"password": password}, headers=headers
        )

    assert (await delete("s3cret!pw", headers={})).status_code == 401
    r = await delete("wrong!pw1")
    assert r.status_code == 400
    assert r.json() == {"errors": [{"msg": "The password is incorrect.", "field": "password"}]}
    assert (await delete(None)).status_code == 400
    assert (await auth.get("/api/auth/me", headers=me)).status_code == 200  # nothing changed

    r = await delete("s3cret!pw")
    assert r.status_code == 204, r.text
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert r.headers[access_tokens.DELETED_HEADER] == "1"
    assert await kit.redis.get(access_tokens.revoked_key(kit.settings.namespace, user_id))
    [event] = await published(kit.settings, "user.deleted", expect=1)
    assert event["user_id"] == user_id
    assert event["id"] == f"user.deleted:{user_id}"
    # the account is gone: no sign-in, no second deletion, and the name is free again
    assert await kit.database[accounts.USERS].find_one({"_id": user_id}) is None
    assert (await auth.get("/api/auth/me", headers=me)).status_code == 401
    assert (await delete("s3cret!pw")).status_code == 401
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert r.status_code == 400
    r = await auth.post("/api/auth/signup", json=GOOD)
    assert r.status_code == 201, r.text
    assert r.json()["userId"] != user_id


async def test_a_deletion_cut_short_is_finished_by_the_outbox(auth: httpx.AsyncClient) -> None:
    """Marked for deletion but not yet published (a crash between): sign-in is refused at
    once, and the relay publishes `user.deleted` and removes the account."""
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    stale = events.UserDeleted(
        id=f"user.deleted:{user_id}", user_id=user_id, occurred_at=events.now().replace(year=2020)
    )
    await kit.database[accounts.USERS].update_one(
        {"_id": user_id}, {"$set": {outbox.PURGE: True}, **outbox.push(stale)}
    )
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert r.status_code == 400
    await outbox.relay_once(kit, collection=accounts.USERS, grace_seconds=0)
    [event] = await published(kit.settings, "user.deleted", expect=1)
    assert event["user_id"] == user_id
    assert await kit.database[accounts.USERS].find_one({"_id": user_id}) is None


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
    assert access_tokens.verify(r.json()["accessToken"], secret=ACCESS_SECRET).spotify is True


async def test_spotify_follows_connects_and_disconnects_in_their_order(
    auth: httpx.AsyncClient,
) -> None:
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    bus = kit.require_bus()
    key = access_tokens.spotify_changed_key(kit.settings.namespace, user_id)

    async def deliver(event: events.Event) -> None:
        await bus.js.publish(bus.subject(event.SUBJECT), event.model_dump_json().encode())

    async def recorded(event: events.Event) -> None:
        """Auth recorded when the connection changed: written just after the flag."""
        expected = int(event.occurred_at.timestamp() * 1000)
        for _ in range(100):
            value = await kit.redis.get(key)
            if value is not None and int(value) == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the change time was not recorded: {value!r} != {expected}")

    async def spotify_becomes(expected: bool) -> None:
        for _ in range(100):
            r = await auth.get("/api/auth/me", headers=auth_headers(user_id))
            if r.json()["spotify"] is expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"spotify never became {expected}")

    first = events.UserAuthorized(id=f"user.authorized:{user_id}:1", user_id=user_id, connection=1)
    await deliver(first)
    await spotify_becomes(True)
    await recorded(first)

    gone = events.UserDisconnected(
        id=f"user.disconnected:{user_id}:1", user_id=user_id, connection=1
    )
    for _ in range(2):  # delivered twice: one effect
        await deliver(gone)
    await spotify_becomes(False)
    # tokens issued before the disconnection are asked again by the gateway
    await recorded(gone)
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert access_tokens.verify(r.json()["accessToken"], secret=ACCESS_SECRET).spotify is False

    # the first connect, redelivered late, does not reopen what was closed
    await accounts.spotify_changed(kit, event=first)
    doc = await kit.database["users"].find_one({"_id": user_id})
    assert (doc["spotify"], doc["spotifySeq"]) == (False, 3)
    second = events.UserAuthorized(id=f"user.authorized:{user_id}:2", user_id=user_id, connection=2)
    await deliver(second)
    await spotify_becomes(True)
    doc = await kit.database["users"].find_one({"_id": user_id})
    assert doc["spotifySeq"] == 4
    await recorded(second)


def test_settings_need_a_long_access_secret(make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="access_token_secret"):
        make_settings(auth_app.Settings, access_token_secret="short")


def from_client(address: str, *, secret: str = SECRET) -> dict[str, str]:
    """The client address the gateway vouches for."""
    return {client_address.HEADER: client_address.encode(address, secret=secret, service="gateway")}


async def test_a_parallel_burst_gets_no_more_checks_than_the_limit(
    auth: httpx.AsyncClient,
) -> None:
    await auth.post("/api/auth/signup", json=GOOD)
    wrong = {"userName": "ana.music", "password": "wrong!pw1"}
    results = await asyncio.gather(*(auth.post("/api/auth/signin", json=wrong) for _ in range(20)))
    codes = sorted(r.status_code for r in results)
    # each 400 is a password checked; the limit is 3 per (account, client)
    assert codes == [400] * 3 + [429] * 17
    r = await auth.post("/api/auth/signin", json={**wrong, "password": GOOD["password"]})
    assert r.status_code == 429


async def test_failures_from_one_client_do_not_lock_out_another(auth: httpx.AsyncClient) -> None:
    await auth.post("/api/auth/signup", json=GOOD)
    wrong = {"userName": "ana.music", "password": "wrong!pw1"}
    right = {**wrong, "password": GOOD["password"]}
    attacker, owner = from_client("203.0.113.7"), from_client("198.51.100.9")
    for _ in range(3):
        assert (
            await auth.post("/api/auth/signin", json=wrong, headers=attacker)
        ).status_code == 400
    assert (await auth.post("/api/auth/signin", json=right, headers=attacker)).status_code == 429
    assert (await auth.post("/api/auth/signin", json=right, headers=owner)).status_code == 200
    # an address nobody vouched for is not believed: these count for the peer itself
    forged = from_client("192.0.2.1", secret="someone-else-secret-0123456789-abcdefghij")
    for _ in range(3):
        assert (await auth.post("/api/auth/signin", json=wrong, headers=forged)).status_code == 400
    assert (await auth.post("/api/auth/signin", json=right)).status_code == 429
    assert (await auth.post("/api/auth/signin", json=right, headers=owner)).status_code == 200


async def test_one_client_cannot_try_every_account(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = auth_settings(make_settings, signin_max_failures=3, signin_client_max_failures=4)
    served = await serve(auth_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url) as c:
        for n in range(6):
            body = {**GOOD, "userName": f"user{n}", "email": f"u{n}@example.com"}
            assert (await c.post("/api/auth/signup", json=body)).status_code == 201
        attacker = from_client("203.0.113.7")
        codes = [
            (
                await c.post(
                    "/api/auth/signin",
                    json={"userName": f"user{n}", "password": "wrong!pw1"},
                    headers=attacker,
                )
            ).status_code
            for n in range(6)
        ]
        assert codes == [400] * 4 + [429] * 2
        right = {"userName": "user5", "password": GOOD["password"]}
        assert (await c.post("/api/auth/signin", json=right, headers=attacker)).status_code == 429
        other = from_client("198.51.100.9")
        assert (await c.post("/api/auth/signin", json=right, headers=other)).status_code == 200


async def test_a_success_clears_the_failures(auth: httpx.AsyncClient) -> None:
    await auth.post("/api/auth/signup", json=GOOD)
    wrong = {"userName": "ana.music", "password": "wrong!pw1"}
    right = {**wrong, "password": GOOD["password"]}
    for _ in range(2):
        assert (await auth.post("/api/auth/signin", json=wrong)).status_code == 400
    assert (await auth.post("/api/auth/signin", json=right)).status_code == 200
    codes = [(await auth.post("/api/auth/signin", json=wrong)).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


async def test_logins_are_bounded(auth: httpx.AsyncClient) -> None:
    r = await auth.post("/api/auth/signin", json={"userName": "a" * 255, "password": "x"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "userName"


async def test_hashing_has_a_bounded_queue() -> None:
    hasher = passwords.Hasher(
        time_cost=1, memory_kib=1024, parallelism=1, concurrency=1, queue_limit=2
    )
    hashed = await hasher.hash("s3cret!pw")
    results = await asyncio.gather(
        *(hasher.verify(hashed, "s3cret!pw") for _ in range(10)), return_exceptions=True
    )
    # one hashing, two waiting; the rest are refused at once rather than queued
    assert results.count(True) == 3
    assert sum(isinstance(r, passwords.Busy) for r in results) == 7
    assert await hasher.verify(hashed, "s3cret!pw") is True  # and the slots are free again


async def test_busy_hashing_answers_503_and_costs_no_attempt(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    # slow hashes, one at a time, nobody waiting
    settings = auth_settings(
        make_settings,
        argon2_time_cost=40,
        argon2_memory_kib=8192,
        hash_concurrency=1,
        hash_queue_limit=0,
        signin_max_failures=8,
    )
    served = await serve(auth_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        assert (await c.post("/api/auth/signup", json=GOOD)).status_code == 201
        wrong = {"userName": "ana.music", "password": "wrong!pw1"}
        results = await asyncio.gather(*(c.post("/api/auth/signin", json=wrong) for _ in range(6)))
        busy = [r for r in results if r.status_code == 503]
        assert busy
        for r in busy:
            assert r.json() == {"errors": [{"msg": accounts.BUSY}]}
            assert r.headers["retry-after"] == "1"
        checked = [r for r in results if r.status_code == 400]
        assert len(checked) + len(busy) == 6
        # refused attempts did not count: the limit of 8 still has room for them
        for _ in range(8 - len(checked)):
            assert (await c.post("/api/auth/signin", json=wrong)).status_code == 400
        assert (await c.post("/api/auth/signin", json=wrong)).status_code == 429


async def test_hashes_from_other_parameters_verify_and_are_upgraded(
    auth: httpx.AsyncClient,
) -> None:
    user_id = (await auth.post("/api/auth/signup", json=GOOD)).json()["userId"]
    kit = auth.app.state.kit  # type: ignore[attr-defined]
    users = kit.database[accounts.USERS]
    # as the earlier defaults hashed it (more lanes, more passes)
    old = PasswordHasher(time_cost=3, memory_cost=8192, parallelism=4).hash(GOOD["password"])
    await users.update_one({"_id": user_id}, {"$set": {"password": old}})
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert r.status_code == 200, r.text
    upgraded = (await users.find_one({"_id": user_id}))["password"]
    assert upgraded != old
    assert "$m=1024,t=1,p=1$" in upgraded
    r = await auth.post("/api/auth/signin", json={"userName": "ana.music", "password": "s3cret!pw"})
    assert r.status_code == 200
