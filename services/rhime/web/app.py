"""The web component: server-rendered pages over the public API (catalogue entry `web`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rhime.kit import app as kit_app
from rhime.kit.settings import Settings as KitSettings
from rhime.web import csrf, gateway, headers, views, visit
from rhime.web.pages import account, connect, home, notifications, posts, profile, search

log = logging.getLogger("rhime.web")


class Settings(KitSettings):
    # The local runner puts the gateway on any free port; in a cluster it is found by DNS.
    gateway_url: str | None = Field(
        default=None,
        description="base URL of the gateway the pages call (default: from the service URL "
        "template)",
    )
    api_timeout_seconds: float = Field(default=10.0, gt=0, description="per API call")
    max_upload_bytes: int = Field(
        default=5_000_000,
        ge=1,
        description="largest profile picture the page lets the browser upload (the user "
        "service's RHIME_MAX_IMAGE_BYTES is what the image store enforces)",
    )
    upload_origin: str | None = Field(
        default=None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="origin (scheme://host[:port]) of the image store the browser uploads "
        "profile pictures to (the user service's public S3 endpoint); allowed in the pages' "
        "connect-src",
    )
    cookie_secure: bool = Field(
        default=True,
        description="the site is served over HTTPS (cookies are Secure): pages send "
        "Strict-Transport-Security (false only for plain-HTTP local runs)",
    )


def create(settings: Settings) -> FastAPI:
    app = kit_app.create_app(
        settings,
        title="web",
        database=None,
        redis=False,
        nats=False,
        routers=[
            account.router(),
            home.router(),
            posts.router(),
            connect.router(),
            notifications.router(),
            search.router(),
            profile.router(max_upload_bytes=settings.max_upload_bytes),
        ],
        max_body_bytes=64_000,  # forms only: pictures go straight to the image store
    )
    app.state.templates = views.environment()
    app.state.gateway_url = (settings.gateway_url or settings.service_url("gateway")).rstrip("/")
    app.state.api_timeout = settings.api_timeout_seconds
    app.state.https = settings.cookie_secure
    app.state.upload_origin = settings.upload_origin
    app.mount("/static", StaticFiles(directory=views.STATIC), name="static")
    _install_error_pages(app)
    app.add_middleware(csrf.SameOrigin)
    app.add_middleware(_RelayCookies)
    # outermost, so refusals and error pages carry the headers too
    app.add_middleware(
        headers.SecurityHeaders,
        https=settings.cookie_secure,
        upload_origin=settings.upload_origin,
    )
    return app


def _install_error_pages(app: FastAPI) -> None:
    """HTML instead of the kit's JSON envelope: people, not programs, read these."""

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, visit.Redirect)
        return visit.redirect(request, exc.location)

    async def on_api_failure(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, gateway.ApiFailure)
        if exc.signed_out:
            return visit.redirect(request, visit.SIGNIN)
        if exc.needs_spotify:
            return visit.redirect(request, visit.CONNECT_SPOTIFY)
        status = exc.status if exc.status < 500 else 502
        return views.error_page(request, status, exc.messages)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
        return views.error_page(request, exc.status_code, [detail] if detail else [])

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        page = views.error_page(request, 500, [])
        state = request.app.state
        return headers.apply(page, https=state.https, upload_origin=state.upload_origin)

    app.add_exception_handler(visit.Redirect, on_redirect)
    app.add_exception_handler(gateway.ApiFailure, on_api_failure)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


class _RelayCookies:
    """Pass the cookies the API set during a request on to the browser, whatever response
    the page ends with (a page, a redirect or an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies = state.get(visit.COOKIES_STATE) or ()
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", c.encode("latin-1")) for c in cookies),
                ]
            await send(message)

        await self.app(scope, receive, relay)
