"""Changing the password through the gateway, in front of real auth: the other sessions are
signed out, this one carries on with a fresh token, and guesses count as failed sign-ins."""

from __future__ import annotations

import httpx

from rhime.auth import accounts
from tests.identity import test_gateway_proxy
from tests.identity.test_gateway_proxy import SIGNUP, Stack, bearer, sign_up_and_in

stack = test_gateway_proxy.stack  # the gateway in front of real auth

NEW = "n3w!secret"


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/auth/me", headers=bearer(token))).status_code


async def change(client: httpx.AsyncClient, token: str, current: str, new: str) -> httpx.Response:
    body = {"currentPassword": current, "newPassword": new}
    return await client.post("/api/auth/password", json=body, headers=bearer(token))


async def test_changing_the_password_signs_out_every_other_session(stack: Stack) -> None:
    c = stack.client
    _, here = await sign_up_and_in(stack)
    r = await c.post("/api/auth/signin", json={"userName": "ana", "password": SIGNUP["password"]})
    elsewhere = r.json()["accessToken"]
    assert await me(c, here) == 200
    assert await me(c, elsewhere) == 200

    r = await change(c, here, "wrong!pw1", NEW)
    assert r.status_code == 400
    assert r.json() == {"errors": [{"msg": accounts.WRONG_CREDENTIALS}]}
    r = await change(c, here, SIGNUP["password"], "short")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "newPassword"
    assert await me(c, elsewhere) == 200  # nothing changed yet

    r = await change(c, here, SIGNUP["password"], NEW)
    assert r.status_code == 200, r.text
    fresh = r.json()["accessToken"]
    assert r.json()["userName"] == "ana"
    assert f"accessToken={fresh}" in r.headers["set-cookie"]
    assert await me(c, elsewhere) == 401
    assert await me(c, here) == 401  # replaced by the fresh one, in the cookie too
    assert await me(c, fresh) == 200

    old = await c.post("/api/auth/signin", json={"userName": "ana", "password": SIGNUP["password"]})
    assert old.status_code == 400
    assert old.json() == {"errors": [{"msg": accounts.WRONG_CREDENTIALS}]}
    r = await c.post("/api/auth/signin", json={"userName": "ana", "password": NEW})
    assert r.status_code == 200
    assert await me(c, r.json()["accessToken"]) == 200


async def test_guessing_the_current_password_is_limited_like_signing_in(stack: Stack) -> None:
    c = stack.client
    _, token = await sign_up_and_in(stack)
    body = {"currentPassword": SIGNUP["password"], "newPassword": NEW}
    assert (await c.post("/api/auth/password", json=body)).status_code == 401
    for _ in range(5):  # signin_max_failures
        assert (await change(c, token, "wrong!pw1", NEW)).status_code == 400
    r = await change(c, token, SIGNUP["password"], NEW)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # the same count as sign-ins of that name from this client
    r = await c.post("/api/auth/signin", json={"userName": "ana", "password": SIGNUP["password"]})
    assert r.status_code == 429
    assert await me(c, token) == 200  # refused guesses sign nobody out
