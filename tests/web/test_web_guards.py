"""The web component's guards, called in-process: state-changing requests only from this site's
own pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from rhime.web import app as web_app
from rhime.web import views
from tests.support import SECRET

HOST = "rhime.test"
REFUSED = "sent from another site"


def web() -> FastAPI:
    settings = web_app.Settings(
        component="web",
        internal_secret=SECRET,
        log_json=False,
        # nothing listens there: the requests below never get as far as calling the API
        gateway_url="http://127.0.0.1:9",
    )
    app = web_app.create(settings)
    return app


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(web()):
        yield c


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-site"},  # a sibling subdomain's page
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": f"http://{HOST}"},
        {},  # says nothing about where it came from
        {"origin": "null"},
        {"origin": "http://evil.example"},
        {"origin": f"http://blog.{HOST}"},
        {"origin": f"http://{HOST}.evil.example"},
        {"origin": f"http://{HOST}:8443"},
        {"referer": f"http://evil.example/{HOST}/"},
        {"x-forwarded-host": "rhime.example", "origin": f"http://{HOST}"},
    ],
)
async def test_posts_from_other_sites_are_refused_with_a_page(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.post("/signout", headers=headers)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert REFUSED in r.text
    assert "set-cookie" not in r.headers


async def test_a_refused_fragment_request_gets_the_errors_fragment(
    client: httpx.AsyncClient,
) -> None:
    headers = {"sec-fetch-site": "same-site", views.PARTIAL_HEADER: "like"}
    r = await client.post(f"/posts/{'c' * 24}/like", headers=headers)
    assert r.status_code == 403
    assert REFUSED in r.text
    assert "<main" not in r.text


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},  # typed or bookmarked
        {"origin": f"http://{HOST}"},
        {"origin": f"https://{HOST}"},  # TLS ended in front of the gateway
        {"referer": f"http://{HOST}/users/x?tab=posts"},
        {"x-forwarded-host": "rhime.example", "origin": "https://rhime.example"},
    ],
)
async def test_posts_from_this_site_pass(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # no such form: past the guard, routing answers 404
    r = await client.post("/no-such-form", headers=headers)
    assert r.status_code == 404
    assert REFUSED not in r.text


async def test_reading_pages_needs_no_origin(client: httpx.AsyncClient) -> None:
    r = await client.get("/signup", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 200
    assert "Create your account" in r.text
