"""The access token: a JWT (HS256, one day) carried by the `accessToken` httpOnly cookie for
browsers or `Authorization: Bearer` for API clients. auth issues it; the gateway verifies it
(and re-issues it once Spotify is connected, so nobody has to sign in again)."""

from __future__ import annotations

import dataclasses
import time

import jwt
from starlette.responses import Response

COOKIE = "accessToken"
TTL_SECONDS = 24 * 3600
_AUDIENCE = "rhime-access"
_ALGORITHM = "HS256"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Claims:
    user_id: str
    user_name: str
    spotify: bool
    issued_at: int = 0  # milliseconds, compared with the sign-out time
    expires_at: int = 0  # seconds


def issue(
    *, user_id: str, user_name: str, spotify: bool, secret: str, ttl: int = TTL_SECONDS
) -> tuple[str, Claims]:
    now_ms = int(time.time() * 1000)
    now = now_ms // 1000
    claims = Claims(
        user_id=user_id,
        user_name=user_name,
        spotify=spotify,
        issued_at=now_ms,
        expires_at=now + ttl,
    )
    payload = {
        "ims": now_ms,
        "sub": user_id,
        "name": user_name,
        "spotify": spotify,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM), claims


def verify(token: str, *, secret: str) -> Claims:
    """Raises `jwt.InvalidTokenError` for anything forged, expired or malformed."""
    payload = jwt.decode(
        token,
        secret,
        algorithms=[_ALGORITHM],
        audience=_AUDIENCE,
        options={"require": ["sub", "exp", "iat", "aud"]},
    )
    return Claims(
        user_id=str(payload["sub"]),
        user_name=str(payload.get("name", "")),
        spotify=bool(payload.get("spotify", False)),
        issued_at=int(payload.get("ims", int(payload["iat"]) * 1000)),
        expires_at=int(payload["exp"]),
    )


def set_cookie(response: Response, token: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, secure=secure, samesite="lax")


# The spotify component sets this on the answer that connects ("1") or disconnects ("0") the
# caller's Spotify; the gateway then re-issues the browser's cookie with that claim at once
# and strips the header.
SPOTIFY_HEADER = "x-rhime-spotify-connected"
# The auth component sets this on the answer that deletes the caller's account; the gateway
# then drops what it keeps per person (the connected cache, the rate window) and strips it.
DELETED_HEADER = "x-rhime-account-deleted"


def spotify_changed_key(namespace: str, user_id: str) -> str:
    """Redis key holding when (ms) the user's Spotify connection last changed: a token's
    `spotify` claim, or a cached answer, from before then is checked again by the gateway."""
    return f"{namespace}:spotify-changed:{user_id}"


def revoked_key(namespace: str, user_id: str) -> str:
    """Redis key holding the time (ms) of the user's last sign-out: tokens issued before it
    are refused by the gateway."""
    return f"{namespace}:signed-out:{user_id}"
