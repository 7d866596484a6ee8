"""The web component's guards, called in-process: state-changing requests only from this site's
own pages, and the security headers on every response."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from rhime.web import app as web_app
from rhime.web import views
from tests.support import SECRET

HOST = "rhime.test"
REFUSED = "sent from another site"


def web(*, https: bool = True, upload_origin: str | None = None) -> FastAPI:
    settings = web_app.Settings(
        component="web",
        internal_secret=SECRET,
        log_json=False,
        # nothing listens there: the requests below never get as far as calling the API
        gateway_url="http://127.0.0.1:9",
        cookie_secure=https,
        upload_origin=upload_origin,
    )
    app = web_app.create(settings)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
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


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/signup", 200),
        ("GET", "/static/rhime.js", 200),
        ("GET", "/nowhere", 404),
        ("POST", "/signout", 403),
        ("GET", "/boom", 500),
    ],
)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    r = await client.request(method, path)
    assert r.status_code == status
    csp = policy(r)
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["default-src"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_plain_http_runs_send_no_strict_transport_security() -> None:
    async for client in client_for(web(https=False)):
        r = await client.get("/signup")
        assert r.status_code == 200
        assert "strict-transport-security" not in r.headers
        assert policy(r)["script-src"] == ["'self'"]


async def test_scripts_may_send_only_here_and_to_the_image_store() -> None:
    async for client in client_for(web()):
        assert policy(await client.get("/signup"))["connect-src"] == ["'self'"]
    store = "https://images.rhime.test:9000"
    async for client in client_for(web(upload_origin=store)):
        for path in ("/signup", "/boom", "/static/avatar.js"):
            csp = policy(await client.get(path))
            assert csp["connect-src"] == ["'self'", store]
            assert csp["form-action"] == ["'self'"]


@pytest.mark.parametrize("origin", ["images.example", "https://x.example/path", "https://a b"])
def test_the_upload_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(ValueError, match="upload_origin"):
        web(upload_origin=origin)


async def test_pages_take_no_large_bodies(client: httpx.AsyncClient) -> None:
    """Pictures go straight to the image store; pages only take forms."""
    r = await client.post(
        "/settings/profile",
        content=b"bio=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded", "origin": f"http://{HOST}"},
    )
    assert r.status_code == 413


@pytest.mark.parametrize("template", sorted(p.name for p in views.TEMPLATES.glob("*.html")))
def test_templates_carry_no_inline_script(template: str) -> None:
    """The policy would block it: scripts live in static files."""
    text = (views.TEMPLATES / template).read_text()
    for tag in re.findall(r"<script\b[^>]*>", text, flags=re.IGNORECASE):
        assert "src=" in tag, f"inline <script> in {template}"
    assert not re.search(r"\son[a-z]+\s*=", text, flags=re.IGNORECASE), template
    assert "javascript:" not in text.lower(), template
