"""The OAuth authorization-code dance with Spotify.

`state` is random, kept in Redis for a few minutes bound to the user who asked, and used
once: the callback must come back with it, from the same signed-in user.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis

from rhime.music.spotify import api, tokens
from rhime.spotify.settings import Settings


class StateError(Exception):
    """Unknown, expired, replayed or someone else's state."""


async def begin(redis: aioredis.Redis, *, settings: Settings, user_id: str) -> str:
    """The accounts-service URL to send the user to."""
    state = secrets.token_urlsafe(24)
    await redis.set(settings.key("oauth", state), user_id, ex=settings.oauth_state_seconds)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.spotify_client_id,
            "scope": api.SCOPE,
            "redirect_uri": settings.redirect_uri,
            "state": state,
            "show_dialog": "true",
        }
    )
    return f"{settings.authorize_url}?{query}"


async def consume_state(
    redis: aioredis.Redis, *, settings: Settings, state: str, user_id: str
) -> None:
    key = settings.key("oauth", state)
    owner = await redis.get(key)
    if owner is None:
        raise StateError("unknown_state")
    if owner != user_id:
        raise StateError("state_mismatch")
    # DEL answers 1 to exactly one of two racing callbacks
    if not await redis.delete(key):
        raise StateError("unknown_state")


async def complete(
    db: Any,
    redis: aioredis.Redis,
    spotify: api.Client,
    *,
    settings: Settings,
    user_id: str,
    state: str,
    code: str,
) -> int:
    """Verify the state, exchange the code and store the tokens; the connection number."""
    await consume_state(redis, settings=settings, state=state, user_id=user_id)
    return await tokens.exchange(db, spotify, settings=settings, user_id=user_id, code=code)
