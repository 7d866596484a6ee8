"""The caller's Spotify access inside a request: their token (refreshed when due) and Web API
calls made with it, with Spotify's failures turned into the API's errors."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Any

from rhime.kit import app as kit_app
from rhime.kit import errors, outbox
from rhime.kit.kit import Resource
from rhime.music import store, tastes
from rhime.music.spotify import api, tokens
from rhime.spotify.settings import Settings


@contextlib.asynccontextmanager
async def _open_client(kit: kit_app.Kit) -> AsyncIterator[api.Client]:
    assert isinstance(kit.settings, Settings)
    opened = api.Client(kit.settings)
    try:
        yield opened
    finally:
        await opened.aclose()


CLIENT = Resource("spotify", open=_open_client)


def client(kit: kit_app.Kit) -> api.Client:
    return kit.resource(CLIENT)


async def token(
    kit: kit_app.Kit, *, settings: Settings, user_id: str
) -> tuple[str, datetime.datetime]:
    """The access token and its expiry; 404 when not connected, 409 when Spotify revoked
    access (which disconnects them and forgets their taste)."""
    try:
        return await tokens.access_token(
            kit.database, kit.redis, client(kit), settings=settings, user_id=user_id
        )
    except tokens.NotConnected:
        raise errors.not_found("Spotify is not connected.") from None
    except tokens.Revoked:
        await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user_id)
        await tastes.forget(kit.database, user_id=user_id)
        raise errors.conflict("Spotify access was revoked; connect again.") from None
    except api.SpotifyError as exc:
        raise upstream(exc) from None


async def web(kit: kit_app.Kit, *, settings: Settings, token: str, call: api.Call) -> Any:
    """One Web API call with the caller's token; Spotify's failures as the API's errors."""
    try:
        return await api.web(client(kit), settings=settings, token=token, call=call)
    except api.SpotifyError as exc:
        raise upstream(exc) from None


def upstream(exc: api.SpotifyError) -> errors.ApiError:
    if isinstance(exc, api.RateLimited):
        return errors.ApiError(
            429,
            "Spotify is rate limiting; try again later.",
            headers={"Retry-After": str(int(exc.retry_after) or 1)},
        )
    if exc.status == 400:
        return errors.bad_request(f"Spotify rejected the request: {exc.message}")
    return errors.ApiError(502, errors.message(502))
