"""Security headers on every response of the web component, pages, errors and static files alike."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


# Scripts only from our own static files (no inline script or on* handlers: an injected one
# does not run). Inline style attributes stay: the genre swatches and avatar sizes are data.
# Pictures come from the object store and Spotify's image hosts, which differ per install.
# Scripts may also send to the object store: profile pictures are uploaded straight to it.
def content_security_policy(*, upload_origin: str | None = None) -> str:
    connect = f"connect-src 'self' {upload_origin}" if upload_origin else "connect-src 'self'"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: https: http:",
            connect,
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()
# One year: only sent where the site is served over HTTPS (cookies marked Secure).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def security_headers(*, https: bool, upload_origin: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(upload_origin=upload_origin),
        # for browsers that predate frame-ancestors
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        # other sites never learn which page (a profile, a post) someone came from
        "referrer-policy": "same-origin",
    }
    if https:
        headers["strict-transport-security"] = STRICT_TRANSPORT_SECURITY
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def apply(response: Response, *, https: bool, upload_origin: str | None = None) -> Response:
    """For the one response middleware never sees: the page for an unexpected error, which
    Starlette sends from outside every middleware."""
    for name, value in security_headers(https=https, upload_origin=upload_origin):
        response.headers[name.decode()] = value.decode()
    return response


class SecurityHeaders:
    """Adds the security headers to every HTTP response, replacing any a handler set."""

    def __init__(self, app: ASGIApp, *, https: bool, upload_origin: str | None = None) -> None:
        self.app = app
        self.headers = security_headers(https=https, upload_origin=upload_origin)
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", []) if h[0].lower() not in self.names]
                message["headers"] = [*kept, *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)
