"""The gateway in front of real auth and user-graph apps, plus a test double of the spotify
component (another engineer's service: only its `/internal/connected/{id}` answer and an echo
route are needed here)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from rhime import events
from rhime.auth import app as auth_app
from rhime.gateway import app as gateway_app
from rhime.gateway import limits, proxy
from rhime.graph import app as graph_app
from rhime.graph import edges
from rhime.kit import access_tokens, client_address, identity
from rhime.runtime import servers
from tests.support import SECRET

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"
SIGNUP = {"userName": "ana", "email": "ana@example.com", "password": "s3cret!pw"}


def spotify_double(connected: set[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/connected/{user_id}")
    async def is_connected(user_id: str, request: Request) -> dict[str, bool]:
        caller = identity.decode(request.headers[identity.HEADER], secret=SECRET)
        assert caller.service == "gateway"
        return {"connected": user_id in connected}

    @app.api_route("/api/spotify/echo", methods=["GET", "POST"])
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        who = request.headers.get(identity.HEADER)
        decoded = identity.decode(who, secret=SECRET) if who else None
        signed_client = request.headers.get(client_address.HEADER)
        return JSONResponse(
            {
                "size": len(body),
                "tail": body[-16:].decode("latin-1"),
                "path": request.url.path,
                "query": request.url.query,
                "user": decoded.user_id if decoded else None,
                "spotify": decoded.spotify if decoded else None,
                "cookie": request.headers.get("cookie"),
                "authorization": request.headers.get("authorization"),
                "requestId": request.headers.get("x-request-id"),
                "client": client_address.decode(signed_client, secret=SECRET)
                if signed_client
                else None,
            },
            headers={"x-upstream": "yes"},
        )

    # connecting and disconnecting as the spotify component answers them
    @app.get("/api/spotify/callback")
    async def callback(request: Request) -> Response:
        caller = identity.decode(request.headers[identity.HEADER], secret=SECRET)
        connected.add(caller.user_id)
        headers = {"location": "/", access_tokens.SPOTIFY_HEADER: "1"}
        return Response(status_code=302, headers=headers)

    @app.delete("/api/spotify/connection")
    async def disconnect(request: Request) -> Response:
        caller = identity.decode(request.headers[identity.HEADER], secret=SECRET)
        connected.discard(caller.user_id)
        return Response(status_code=204, headers={access_tokens.SPOTIFY_HEADER: "0"})

    @app.get("/api/spotify/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(64):
                yield bytes([65 + n % 26]) * 16384

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get("/api/spotify/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(3)
        return {"late": "yes"}

    return app


@dataclasses.dataclass
class Stack:
    gateway: Any
    client: httpx.AsyncClient
    connected: set[str]
    graph_kit: Any
    spotify_url: str
    auth_kit: Any


@pytest.fixture
async def stack(make_settings: Callable[..., Any], serve: Any) -> AsyncIterator[Stack]:
    connected: set[str] = set()
    spotify = await serve(spotify_double(connected), wait_ready=False)
    auth = await serve(
        auth_app.create(
            make_settings(
                auth_app.Settings,
                component="auth",
                access_token_secret=ACCESS_SECRET,
                argon2_time_cost=1,
                argon2_memory_kib=1024,
                argon2_parallelism=1,
            )
        )
    )
    graph = await serve(graph_app.create(make_settings(graph_app.Settings, component="user-graph")))
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={
            "auth": auth.url,
            "user-graph": graph.url,
            "spotify": spotify.url,
            "web": f"http://127.0.0.1:{servers.free_port()}",
        },
        service_url_template="http://127.0.0.1:1",
        max_body_bytes=2_000_000,
        # above what a store read takes on a loaded machine, below the slow route's 3 s
        upstream_timeout_seconds=2.0,
        rate_limit_ip=1000,
    )
    gateway = await serve(gateway_app.create(settings))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        yield Stack(
            gateway, client, connected, graph.app.state.kit, spotify.url, auth.app.state.kit
        )


async def sign_up_and_in(stack: Stack, **change: str) -> tuple[str, str]:
    body = {**SIGNUP, **change}
    r = await stack.client.post("/api/auth/signup", json=body)
    assert r.status_code == 201, r.text
    r = await stack.client.post(
        "/api/auth/signin", json={"userName": body["userName"], "password": body["password"]}
    )
    assert r.status_code == 200, r.text
    return r.json()["userId"], r.json()["accessToken"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def cookie_header(token: str) -> dict[str, str]:
    """What a browser sends (httpx keeps Secure cookies away from plain http)."""
    return {"cookie": f"theme=dark; accessToken={token}"}


async def test_gates_and_identity(stack: Stack) -> None:
    c = stack.client
    user_id, token = await sign_up_and_in(stack)
    # the cookie set through the gateway authenticates the browser
    assert c.cookies.get("accessToken") == token
    c.cookies.clear()
    r = await c.get("/api/auth/me", headers=cookie_header(token))
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == user_id

    # no token: 401 on login-gated and spotify-gated prefixes
    for path in ("/api/spotify/echo", "/api/graph/users/" + user_id + "/counts"):
        r = await c.get(path)
        assert r.status_code == 401
        assert r.json() == {"errors": [{"msg": "The user is not authenticated."}]}
    # bad, forged and expired tokens are the same as none
    forged, _ = access_tokens.issue(user_id=user_id, user_name="ana", spotify=True, secret="x" * 40)
    expired, _ = access_tokens.issue(
        user_id=user_id, user_name="ana", spotify=True, secret=ACCESS_SECRET, ttl=-10
    )
    for bad in ("garbage", forged, expired):
        assert (await c.get("/api/spotify/echo", headers=bearer(bad))).status_code == 401

    # login is enough for /api/spotify; the client's identity header never reaches a service
    fake_identity = identity.encode(identity.Identity(user_id="0" * 24), secret=SECRET)
    r = await c.get(
        "/api/spotify/echo?a=1&b=%2F",
        headers={**bearer(token), identity.HEADER: fake_identity, "cookie": "x=1"},
    )
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["user"] == user_id
    assert seen["spotify"] is False
    assert seen["path"] == "/api/spotify/echo"
    assert seen["query"] == "a=1&b=%2F"
    assert seen["cookie"] is None
    assert seen["authorization"] is None
    assert r.headers["x-upstream"] == "yes"

    # other /api routes need Spotify too
    r = await c.get(f"/api/graph/users/{user_id}/counts", headers=bearer(token))
    assert r.status_code == 401
    assert r.json() == {"errors": [{"msg": "The user is not authorized to access this resource."}]}


async def test_connecting_spotify_needs_no_new_sign_in(stack: Stack) -> None:
    c = stack.client
    user_id, token = await sign_up_and_in(stack)
    await edges.add_user(stack.graph_kit.database, user_id=user_id, user_name="ana")
    path = f"/api/graph/users/{user_id}/counts"
    c.cookies.clear()
    assert (await c.get(path, headers=cookie_header(token))).status_code == 401
    stack.connected.add(user_id)
    await asyncio.sleep(2.1)  # the "not connected" answer is remembered for 2 s
    r = await c.get(path, headers=cookie_header(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"followers": 0, "following": 0}
    refreshed = r.cookies.get("accessToken")
    assert refreshed
    assert refreshed != token
    assert access_tokens.verify(refreshed, secret=ACCESS_SECRET).spotify is True
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie
    # a bearer client with the old token gets through too (no cookie to refresh)
    r = await c.get(path, headers=bearer(token))
    assert r.status_code == 200
    assert "set-cookie" not in r.headers


async def test_disconnecting_closes_the_gate_for_every_token_until_reconnected(
    stack: Stack,
) -> None:
    c = stack.client
    c.cookies.clear()
    user_id, first = await sign_up_and_in(stack)
    await edges.add_user(stack.graph_kit.database, user_id=user_id, user_name="ana")
    path = f"/api/graph/users/{user_id}/counts"
    c.cookies.clear()
    stack.connected.add(user_id)
    r = await c.get(path, headers=cookie_header(first))
    assert r.status_code == 200
    connected = r.cookies["accessToken"]  # says Spotify, as does another device's token
    assert access_tokens.verify(connected, secret=ACCESS_SECRET).spotify is True
    assert (await c.get(path, headers=bearer(connected))).status_code == 200

    # this browser: its cookie says "not connected" at once, and the gate is shut for it
    r = await c.delete("/api/spotify/connection", headers=cookie_header(connected))
    assert r.status_code == 204
    assert access_tokens.SPOTIFY_HEADER not in r.headers
    browser = r.cookies["accessToken"]
    assert access_tokens.verify(browser, secret=ACCESS_SECRET).spotify is False
    r = await c.get(path, headers=cookie_header(browser))
    assert r.status_code == 401
    assert "not authorized" in r.json()["errors"][0]["msg"]

    # every other token: closed once auth hears `user.disconnected` (at least once)
    gone = events.UserDisconnected(
        id=f"user.disconnected:{user_id}:1", user_id=user_id, connection=1
    )
    bus = stack.auth_kit.require_bus()
    for _ in range(2):
        await bus.js.publish(bus.subject(gone.SUBJECT), gone.model_dump_json().encode())

    async def shut() -> bool:
        return (await c.get(path, headers=bearer(connected))).status_code == 401

    for _ in range(100):
        if await shut():
            break
        await asyncio.sleep(0.05)
    assert await shut()

    # connecting again opens it at once, with no wait for the cached "no" to expire
    r = await c.get("/api/spotify/callback", headers=cookie_header(browser))
    assert r.status_code == 302
    again = r.cookies["accessToken"]
    assert access_tokens.verify(again, secret=ACCESS_SECRET).spotify is True
    assert (await c.get(path, headers=cookie_header(again))).status_code == 200
    # and the old tokens are good again too: the connection is what counts
    assert (await c.get(path, headers=bearer(connected))).status_code == 200


async def test_spotify_unreachable_means_not_connected(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        service_url_template=f"http://127.0.0.1:{servers.free_port()}",
    )
    gateway = await serve(gateway_app.create(settings))
    token, _ = access_tokens.issue(
        user_id="a" * 24, user_name="a", spotify=False, secret=ACCESS_SECRET
    )
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.get("/api/graph/users/" + "a" * 24 + "/counts", headers=bearer(token))
        assert r.status_code == 401
        assert r.json()["errors"][0]["msg"] == "The user is not authorized to access this resource."
        # upstream down: 502 in the envelope
        r = await c.post("/api/auth/signin", json={})
        assert r.status_code == 502
        assert r.json() == {"errors": [{"msg": "An upstream service is unavailable."}]}


async def test_sign_out_revokes_tokens(stack: Stack) -> None:
    c = stack.client
    _, token = await sign_up_and_in(stack)
    assert (await c.get("/api/spotify/echo", headers=bearer(token))).status_code == 200
    r = await c.post("/api/auth/signout", headers=bearer(token))
    assert r.status_code == 200
    assert (await c.get("/api/spotify/echo", headers=bearer(token))).status_code == 401
    c.cookies.clear()
    _, fresh = await sign_up_and_in(stack, userName="ana2", email="ana2@example.com")
    assert (await c.get("/api/spotify/echo", headers=bearer(fresh))).status_code == 200


async def test_internal_paths_are_never_public(stack: Stack) -> None:
    _, token = await sign_up_and_in(stack)
    for path in (
        "/internal/connected/" + "a" * 24,
        "/api/spotify/internal/connected/x",
        "/api/users/internal/users/cards",
    ):
        r = await stack.client.get(path, headers=bearer(token))
        assert r.status_code == 404, path
        assert r.json() == {"errors": [{"msg": "The resource cannot be found."}]}


async def test_bodies_stream_both_ways_and_are_limited(stack: Stack) -> None:
    c = stack.client
    _, token = await sign_up_and_in(stack)
    big = b"0123456789abcdef" * 100_000  # 1.6 MB, sent chunked

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(0, len(big), 65536):
            yield big[n : n + 65536]

    r = await c.post("/api/spotify/echo", content=chunks(), headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["size"] == len(big)
    assert r.json()["tail"] == "0123456789abcdef"
    r = await c.get("/api/spotify/stream", headers=bearer(token))
    assert len(r.content) == 64 * 16384
    r = await c.post("/api/spotify/echo", content=big + big, headers=bearer(token))
    assert r.status_code == 413
    assert r.json() == {"errors": [{"msg": "The request body is too large."}]}


async def test_timeouts_down_and_unknown(stack: Stack) -> None:
    c = stack.client
    _, token = await sign_up_and_in(stack)
    r = await c.get("/api/spotify/slow", headers=bearer(token))
    assert r.status_code == 504
    assert r.json() == {"errors": [{"msg": "An upstream service timed out."}]}
    r = await c.get("/")  # the web component is not running
    assert r.status_code == 502
    assert r.json()["errors"][0]["msg"] == "An upstream service is unavailable."


async def test_request_id_is_generated_or_propagated(stack: Stack) -> None:
    _, token = await sign_up_and_in(stack)
    r = await stack.client.get(
        "/api/spotify/echo", headers={**bearer(token), "x-request-id": "trace-123"}
    )
    assert r.headers["x-request-id"] == "trace-123"
    assert r.json()["requestId"] == "trace-123"
    r = await stack.client.get("/api/spotify/echo", headers=bearer(token))
    assert len(r.headers["x-request-id"]) == 32
    assert r.json()["requestId"] == r.headers["x-request-id"]
    r = await stack.client.get("/internal/x")
    assert r.headers["x-request-id"]


async def test_docs_are_public(stack: Stack) -> None:
    r = await stack.client.get("/api/graph/openapi.json")
    assert r.status_code == 200
    assert "/api/graph/following/{userId}" in r.json()["paths"]


async def test_rate_limits(make_settings: Callable[..., Any], serve: Any, stack: Stack) -> None:
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={"auth": str(stack.gateway.url)},  # anything answering
        rate_limit_ip=3,
        rate_limit_user=2,
        rate_limit_anonymous=5,
        rate_window_seconds=30,
    )
    gateway = await serve(gateway_app.create(settings))
    token, _ = access_tokens.issue(
        user_id="b" * 24, user_name="b", spotify=True, secret=ACCESS_SECRET
    )
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        codes = [(await c.get("/api/auth/me")).status_code for _ in range(4)]
        assert codes[-1] == 429
        assert 429 not in codes[:3]
        r = await c.get("/api/auth/me")
        assert r.status_code == 429
        assert 0 < int(r.headers["retry-after"]) <= 31
        assert r.json() == {"errors": [{"msg": "Too many requests."}]}
        # per user elsewhere: another budget
        codes = [(await c.get("/api/graph/x", headers=bearer(token))).status_code for _ in range(3)]
        assert codes[2] == 429
        assert 429 not in codes[:2]
        # signed-out pages share a larger per-IP budget, apart from the auth routes'
        codes = [(await c.get("/signin")).status_code for _ in range(6)]
        assert 429 not in codes[:5]
        assert codes[5] == 429


def signed_client(address: str, *, secret: str = SECRET) -> dict[str, str]:
    """What the web sends when it calls the gateway for a browser at `address`."""
    return {client_address.HEADER: client_address.encode(address, secret=secret, service="web")}


async def test_the_client_is_named_only_by_a_trusted_hop(
    make_settings: Callable[..., Any], serve: Any, stack: Stack
) -> None:
    _, token = await sign_up_and_in(stack)

    async def client_seen(c: httpx.AsyncClient, headers: dict[str, str]) -> str:
        r = await c.get("/api/spotify/echo", headers={**bearer(token), **headers})
        assert r.status_code == 200, r.text
        return str(r.json()["client"])

    # not behind a configured proxy: X-Forwarded-For is the client's own claim, ignored
    c = stack.client
    assert await client_seen(c, {}) == "127.0.0.1"
    assert await client_seen(c, {"x-forwarded-for": "6.6.6.6"}) == "127.0.0.1"
    # the web vouches for the browser with the internal secret; a forged voucher counts for
    # nothing, and the client's own signed-looking header never reaches a service
    assert await client_seen(c, signed_client("203.0.113.7")) == "203.0.113.7"
    forged = signed_client("6.6.6.6", secret="someone-else-secret-0123456789-abcdefghij")
    assert await client_seen(c, forged) == "127.0.0.1"

    # behind a trusted proxy: the right-most entry that is not a trusted proxy
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={"spotify": stack.spotify_url},
        trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"],
    )
    proxied = await serve(gateway_app.create(settings))
    async with httpx.AsyncClient(base_url=proxied.url) as behind:
        assert await client_seen(behind, {}) == "127.0.0.1"
        xff = {"x-forwarded-for": "6.6.6.6, 203.0.113.7"}
        assert await client_seen(behind, xff) == "203.0.113.7"
        xff = {"x-forwarded-for": "6.6.6.6, 198.51.100.9, 10.1.2.3"}
        assert await client_seen(behind, xff) == "198.51.100.9"
        xff = {"x-forwarded-for": "not-an-address, 10.1.2.3"}
        assert await client_seen(behind, xff) == "10.1.2.3"


async def test_browsers_behind_the_web_have_their_own_rate_limit(
    make_settings: Callable[..., Any], serve: Any, stack: Stack
) -> None:
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={"auth": stack.gateway.url},
        rate_limit_ip=2,
        rate_window_seconds=30,
    )
    gateway = await serve(gateway_app.create(settings))
    async with httpx.AsyncClient(base_url=gateway.url) as c:

        async def codes(headers: dict[str, str], times: int) -> list[int]:
            return [
                (await c.get("/api/auth/me", headers=headers)).status_code for _ in range(times)
            ]

        # one browser exhausts its budget through the web...
        assert (await codes(signed_client("203.0.113.7"), 3))[-1] == 429
        # ...and another browser on the same web pod still gets through
        assert 429 not in await codes(signed_client("198.51.100.9"), 2)
        # spoofing X-Forwarded-For does not buy a fresh budget
        assert (await codes({"x-forwarded-for": "1.1.1.1"}, 3))[-1] == 429
        assert (await codes({"x-forwarded-for": "2.2.2.2"}, 1)) == [429]


async def test_unknown_api_paths_get_the_json_404(stack: Stack) -> None:
    _, token = await sign_up_and_in(stack)
    for path in ("/api/nothing-here", "/api", "/api/", "/api/authx/signin"):
        r = await stack.client.get(path, headers=bearer(token))
        assert r.status_code == 404, path
        assert r.json() == {"errors": [{"msg": "The resource cannot be found."}]}
    # everything else outside /api is still the web's (not running here: 502)
    assert (await stack.client.get("/apis")).status_code == 502


async def test_metrics_are_for_the_cluster_only(
    make_settings: Callable[..., Any], serve: Any, stack: Stack
) -> None:
    c = stack.client
    r = await c.get("/metrics")  # a scraper on a private address, no proxy in between
    assert r.status_code == 200
    assert "# HELP" in r.text
    for headers in ({"x-forwarded-for": "203.0.113.7"}, {"forwarded": "for=203.0.113.7"}):
        r = await c.get("/metrics", headers=headers)  # came through a proxy: the internet
        assert r.status_code == 404
        assert r.json() == {"errors": [{"msg": "The resource cannot be found."}]}
    # a component's own metrics and health are never forwarded, however spelled
    for path in ("/metrics/", "/metrics//", "/readyz/", "/healthz//"):
        r = await c.get(path)
        assert r.status_code == 404, path
        assert r.json() == {"errors": [{"msg": "The resource cannot be found."}]}
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        metrics_networks=["10.0.0.0/8"],
    )
    elsewhere = await serve(gateway_app.create(settings))
    async with httpx.AsyncClient(base_url=elsewhere.url) as outside:
        assert (await outside.get("/metrics")).status_code == 404
        assert (await outside.get("/healthz")).status_code == 200


async def test_a_stalled_redis_fails_fast_and_closed_for_writes(stack: Stack) -> None:
    _, token = await sign_up_and_in(stack)
    redis = stack.graph_kit.redis
    await redis.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    try:
        started = time.monotonic()
        r = await stack.client.get("/api/spotify/echo", headers=bearer(token))
        assert r.status_code == 200  # reads go on, unlimited for the moment
        r = await stack.client.post("/api/spotify/echo", headers=bearer(token), content=b"x")
        # a write could come from a signed-out token: refused until sign-outs can be checked
        assert r.status_code == 503
        assert r.json() == {"errors": [{"msg": proxy.UNCHECKED}]}
        assert r.headers["retry-after"]
        assert time.monotonic() - started < 2  # neither waited for Redis to come back
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
    r = await stack.client.post("/api/spotify/echo", headers=bearer(token), content=b"x")
    assert r.status_code == 200


async def test_deleting_the_account_through_the_gateway_forgets_its_keys(stack: Stack) -> None:
    """The real auth behind the gateway: a deletion refuses the person's tokens at once, and
    the gateway drops what it kept under their id (the connected cache, the rate window)."""
    c = stack.client
    user_id, token = await sign_up_and_in(stack, userName="leaving", email="leaving@example.com")
    c.cookies.clear()
    r = await c.get("/api/spotify/callback", headers=bearer(token))  # caches "connected"
    assert r.status_code == 302
    kit = stack.gateway.app.state.kit
    window = stack.gateway.app.state.kit.settings.rate_window_seconds
    rate = limits.counters(kit.key("rate", "user", user_id), window=window)
    keys = [kit.key("connected", user_id), *rate]
    assert await kit.redis.exists(*keys) >= 2
    r = await c.request(
        "DELETE", "/api/auth/me", json={"password": "nope!pw12"}, headers=bearer(token)
    )
    assert r.status_code == 400
    assert await kit.redis.exists(*keys) >= 2  # a refused deletion forgets nothing
    r = await c.request(
        "DELETE", "/api/auth/me", json={"password": SIGNUP["password"]}, headers=bearer(token)
    )
    assert r.status_code == 204, r.text
    assert access_tokens.DELETED_HEADER not in r.headers  # for the gateway only
    assert await kit.redis.exists(*keys) == 0
    assert (await c.get("/api/auth/me", headers=bearer(token))).status_code == 401
