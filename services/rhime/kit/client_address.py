"""The client's address, carried between components so that limits key on the real client.

The gateway resolves who is calling (the TCP peer, or what a trusted proxy says in
X-Forwarded-For) and passes it on in `x-rhime-client`, signed with the internal secret as
identity is. The web hands it back when it calls the gateway for the browser, and auth counts
sign-in failures per client with it. A bare header would let anyone pick their own bucket.
"""

from __future__ import annotations

import time

import jwt
from starlette.requests import Request

HEADER = "x-rhime-client"
# Its own audience, so that neither this token nor an identity token passes for the other.
_AUDIENCE = "rhime-client"
_ALGORITHM = "HS256"
_TTL_SECONDS = 120
MAX_LENGTH = 64  # an IPv6 address with a zone fits; anything longer is not an address


def encode(address: str, *, secret: str, service: str, ttl: int = _TTL_SECONDS) -> str:
    """`service` names the component vouching for the address (for logs and audits)."""
    now = int(time.time())
    claims = {"cip": address[:MAX_LENGTH], "svc": service, "aud": _AUDIENCE, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode(token: str, *, secret: str) -> str:
    """The address; raises `jwt.InvalidTokenError` for anything forged, expired or malformed."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[_ALGORITHM],
        audience=_AUDIENCE,
        options={"require": ["cip", "exp", "aud"]},
    )
    address = claims["cip"]
    if not isinstance(address, str) or not address or len(address) > MAX_LENGTH:
        raise jwt.InvalidTokenError("not a client address")
    return address


def verified(request: Request) -> str | None:
    """The address a component vouched for on this request, or None (absent or forged)."""
    token = request.headers.get(HEADER)
    if not token:
        return None
    secret = request.app.state.kit.settings.internal_secret.get_secret_value()
    try:
        return decode(token, secret=secret)
    except jwt.InvalidTokenError:
        return None


def of(request: Request) -> str:
    """The client behind this request: vouched for by a component, else the TCP peer."""
    found = verified(request)
    if found is not None:
        return found
    return request.client.host if request.client else "unknown"
