"""The browser's address survives the web's call back into the gateway: the web vouches for
it with the internal secret, so the gateway's limits count each browser, not the web pod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rhime.gateway import app as gateway_app
from rhime.runtime import servers
from rhime.web import app as web_app

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"
# What a browser sends with a form posted from the site's own page (the web's CSRF guard).
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


def auth_double(seen: list[str]) -> FastAPI:
    """Auth as far as this test needs: who the gateway says is signing in."""
    app = FastAPI()

    @app.post("/api/auth/signin")
    async def signin(request: Request) -> JSONResponse:
        seen.append(request.headers.get("x-forwarded-for", ""))
        return JSONResponse({"errors": [{"msg": "nope"}]}, status_code=400)

    return app


async def test_the_gateway_counts_the_browser_not_the_web(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    seen: list[str] = []
    auth = await serve(auth_double(seen), wait_ready=False)
    gateway_port = servers.free_port()
    web = await serve(
        web_app.create(
            make_settings(
                web_app.Settings, component="web", gateway_url=f"http://127.0.0.1:{gateway_port}"
            )
        )
    )
    settings = make_settings(
        gateway_app.Settings,
        component="gateway",
        access_token_secret=ACCESS_SECRET,
        upstreams={"auth": auth.url, "web": web.url},
        service_url_template="http://127.0.0.1:1",
        trusted_proxies=["127.0.0.0/8"],  # the test client plays the Ingress
        rate_limit_ip=2,
    )
    await serve(gateway_app.create(settings), port=gateway_port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}") as c:

        async def sign_in(browser: str) -> httpx.Response:
            form = {"login": "ana", "password": "wrong!pw1"}
            headers = {"x-forwarded-for": browser, **SAME_ORIGIN}
            return await c.post("/signin", data=form, headers=headers)

        for _ in range(3):
            await sign_in("203.0.113.7")
        assert seen == ["203.0.113.7"] * 2  # the third was over that browser's budget
        await sign_in("198.51.100.9")
        assert seen[-1] == "198.51.100.9"  # another browser behind the same web: its own
        # what the browser itself wrote into X-Forwarded-For changes nothing
        await c.post(
            "/signin",
            data={"login": "ana", "password": "x"},
            headers={"x-forwarded-for": "192.0.2.1, 198.51.100.9", **SAME_ORIGIN},
        )
        assert seen[-1] == "198.51.100.9"
