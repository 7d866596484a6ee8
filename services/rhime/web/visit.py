"""One browser request: who is signing in, the API as that person, and page responses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import jinja2
import jwt
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from rhime.kit import client_address, identity, logs
from rhime.web import gateway, views

SIGNIN = "/signin"
CONNECT_SPOTIFY = "/connect-spotify"
# Header rhime.js reads to navigate when a fragment request must go elsewhere.
REDIRECT_HEADER = "x-rhime-redirect"
COOKIES_STATE = "rhime_set_cookies"


@dataclasses.dataclass(frozen=True)
class Viewer:
    user_id: str
    user_name: str
    spotify: bool


class Redirect(Exception):
    """Leave the page for `location`, carrying any cookies the API set."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def redirect(request: Request, location: str, *, cookies: tuple[str, ...] = ()) -> Response:
    """303 for a page; for a fragment request, a header rhime.js follows (fetch would
    otherwise follow the redirect itself and swap a whole page into a fragment)."""
    if views.is_partial(request):
        response: Response = Response(status_code=204, headers={REDIRECT_HEADER: location})
    else:
        response = Response(status_code=303, headers={"location": location})
    for cookie in cookies:
        response.headers.append("set-cookie", cookie)
    return response


def signed_identity(request: Request) -> identity.Identity | None:
    """The identity the gateway verified from the cookie and signed for us, if any."""
    token = request.headers.get(identity.HEADER)
    if not token:
        return None
    secret = request.app.state.kit.settings.internal_secret.get_secret_value()
    try:
        found = identity.decode(token, secret=secret)
    except jwt.InvalidTokenError:
        return None
    return found if found.service is None and found.user_id else None


def parse_viewer(body: Any) -> Viewer | None:
    """The current user from `GET /api/auth/me` (accepts `{user: {...}}` or the bare user)."""
    if not isinstance(body, dict):
        return None
    user = body.get("user", body)
    if not isinstance(user, dict):
        return None
    user_id = user.get("userId") or user.get("id")
    if not user_id:
        return None
    spotify = user.get("spotify", user.get("spotifyConnected", user.get("isAuth", False)))
    return Viewer(
        user_id=str(user_id), user_name=str(user.get("userName", "")), spotify=bool(spotify)
    )


@dataclasses.dataclass
class Visit:
    request: Request
    api: gateway.Gateway
    env: jinja2.Environment
    viewer: Viewer | None = None

    @property
    def partial(self) -> str | None:
        return self.request.headers.get(views.PARTIAL_HEADER)

    async def current(self) -> Viewer | None:
        """Who is signed in, or None (no cookie, or one the platform rejects).

        The gateway's signed identity saves an API call on every page; only a token that
        predates connecting Spotify is checked with the API, which knows better."""
        if self.viewer is not None:
            return self.viewer
        if not self.api.cookie:
            return None
        found = signed_identity(self.request)
        if found is not None and found.spotify:
            self.viewer = Viewer(user_id=found.user_id, user_name=found.user_name, spotify=True)
            return self.viewer
        try:
            body = await self.api.get("/api/auth/me")
        except gateway.ApiFailure as failure:
            if failure.status == 401:
                return None
            raise
        self.viewer = parse_viewer(body)
        return self.viewer

    async def require(self) -> Viewer:
        """The signed-in viewer; otherwise redirect to sign in. Whether Spotify is connected
        is left to the API: its gate knows at once, while the account learns it from an event
        a moment later, and a 401 "not authorized" sends the page to connect Spotify."""
        viewer = await self.current()
        if viewer is None:
            raise Redirect(f"{SIGNIN}?next={quote(self._here(), safe='/')}")
        return viewer

    def _here(self) -> str:
        url = self.request.url
        return url.path + (f"?{url.query}" if url.query else "")

    def page(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return views.respond(self.env, template, self._context(context), status=status)

    def fragment(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return views.respond(self.env, template, self._context(context), status=status)

    def _context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        return {"viewer": self.viewer, "request_path": self.request.url.path, **context}


def back(request: Request, fallback: str = "/") -> str:
    """Where a form without JavaScript returns to: a same-site `next` field or the referrer."""
    referrer = request.headers.get("referer", "")
    # Behind the gateway the browser's host arrives as X-Forwarded-Host.
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    for prefix in (f"http://{host}", f"https://{host}"):
        if host and referrer.startswith(prefix + "/"):
            return safe_next(referrer.removeprefix(prefix), fallback)
    return fallback


def safe_next(value: str | None, fallback: str = "/") -> str:
    r"""Only a path on this site: an open redirect would let others send people anywhere.

    Browsers drop tabs and newlines from a URL and read `\` as `/`, so `/\t/evil.example` or
    `/\evil.example` would leave the site: anything but a plain relative path is refused."""
    if not value or "\\" in value or not value.isprintable() or any(c.isspace() for c in value):
        return fallback
    try:
        parts = urlsplit(value)
    except ValueError:
        return fallback
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.startswith("//"):
        return fallback
    return value


def get_visit(request: Request) -> Visit:
    state = request.app.state
    settings = state.kit.settings
    # The browser's address as the gateway signed it (or our peer, reached directly), signed
    # again by us: a bare header from the web would be one any client could send too.
    browser = client_address.of(request)
    api = gateway.Gateway(
        http=state.kit.http,
        base_url=state.gateway_url,
        cookie=request.headers.get("cookie"),
        request_id=logs.request_id.get() or logs.new_request_id(),
        client_token=client_address.encode(
            browser,
            secret=settings.internal_secret.get_secret_value(),
            service=settings.component or "web",
        ),
        timeout=state.api_timeout,
        tracing=state.kit.tracing,
    )
    # Cookies the API sets on any call (sign-in, a refreshed token) reach the browser.
    request.scope.setdefault("state", {})[COOKIES_STATE] = api.set_cookies
    return Visit(request=request, api=api, env=state.templates)


VisitDep = Annotated[Visit, Depends(get_visit)]
