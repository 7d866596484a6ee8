"""Who is calling: the identity the gateway forwards, signed so services can verify it.

The gateway verifies the user's access token, then forwards a short-lived internal token in
`x-rhime-identity`, signed with the internal secret that only Rhime's components hold. A bare
header could be forged by anything inside the cluster; this one cannot without the secret.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import jwt
from fastapi import Depends, Request

from rhime.kit import errors

HEADER = "x-rhime-identity"
_AUDIENCE = "rhime-internal"
_ALGORITHM = "HS256"
_TTL_SECONDS = 120


@dataclasses.dataclass(frozen=True, kw_only=True)
class Identity:
    user_id: str
    user_name: str = ""
    spotify: bool = False  # Spotify connected
    service: str | None = None  # set when a component calls on its own behalf


def encode(identity: Identity, *, secret: str, ttl: int = _TTL_SECONDS) -> str:
    now = int(time.time())
    claims = {
        "sub": identity.user_id,
        "name": identity.user_name,
        "spotify": identity.spotify,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    if identity.service:
        claims["svc"] = identity.service
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode(token: str, *, secret: str) -> Identity:
    """Raises `jwt.InvalidTokenError` for anything forged, expired or malformed."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[_ALGORITHM],
        audience=_AUDIENCE,
        options={"require": ["sub", "exp", "aud"]},
    )
    return Identity(
        user_id=str(claims["sub"]),
        user_name=str(claims.get("name", "")),
        spotify=bool(claims.get("spotify", False)),
        service=claims.get("svc"),
    )


def _secret(request: Request) -> str:
    return str(request.app.state.kit.settings.internal_secret.get_secret_value())


def optional_identity(request: Request) -> Identity | None:
    token = request.headers.get(HEADER)
    if not token:
        return None
    try:
        return decode(token, secret=_secret(request))
    except jwt.InvalidTokenError:
        raise errors.unauthenticated() from None


def current_identity(request: Request) -> Identity:
    """The verified caller; 401 when identity is missing, forged or expired."""
    identity = optional_identity(request)
    if identity is None:
        raise errors.unauthenticated()
    return identity


def current_user(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    """A signed-in person (not a component calling on its own behalf)."""
    if identity.service is not None or not identity.user_id:
        raise errors.unauthenticated()
    return identity


def current_service(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    """A Rhime component calling an internal route."""
    if identity.service is None:
        raise errors.forbidden("This route is internal.")
    return identity


User = Annotated[Identity, Depends(current_user)]
Service = Annotated[Identity, Depends(current_service)]
Caller = Annotated[Identity, Depends(current_identity)]
