"""Cross-site request forgery: a state-changing request must come from a page of this site.

The `accessToken` cookie is `SameSite=Lax`, which still rides on POSTs from sibling
subdomains (`same-site`), so only `same-origin` counts. Browsers say where a request comes
from in `Sec-Fetch-Site`; those that do not send it still send `Origin` (or at least
`Referer`) on a POST, which must name this host. A request that shows neither is refused: no
browser form of ours sends one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from rhime.web import views

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# `none`: the person typed or bookmarked the request; no other page started it.
ALLOWED_SITES = frozenset({"same-origin", "none"})
REFUSED = "This form was sent from another site, so it was refused. Go back and try again."


def own_host(request: Request) -> str:
    """The host the browser asked for; behind the gateway it arrives as X-Forwarded-Host."""
    return (request.headers.get("x-forwarded-host") or request.headers.get("host", "")).lower()


def same_origin(request: Request) -> bool:
    """Whether a state-changing request came from a page of this site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ALLOWED_SITES
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    host = own_host(request)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == host


class SameOrigin:
    """Refuses, with a 403 page, state-changing requests another site's page started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            request = Request(scope)
            if not same_origin(request):
                response = views.error_page(request, 403, [REFUSED])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
