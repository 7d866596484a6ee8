"""Spotify's accounts service: ``/authorize`` consents at once for a fake user, and
``/api/token`` follows the authorization-code and refresh-token grants."""

# No ``from __future__ import annotations``: FastAPI must evaluate the route signatures.

import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Header, Query
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from rhime.fakespotify import faults
from rhime.fakespotify.errors import OAuthError
from rhime.fakespotify.settings import FakeSpotifySettings
from rhime.fakespotify.state import Access, Code, FakeState, Grant
from rhime.music import population as pop

CODE_LIFETIME = 600.0


def router(
    *,
    settings: FakeSpotifySettings,
    spec: pop.PopulationSpec,
    state: FakeState,
    clock: Callable[[], float],
) -> APIRouter:
    routes = APIRouter()
    routes.get("/authorize", response_model=None)(
        _authorize(settings=settings, spec=spec, state=state, clock=clock)
    )
    routes.post("/api/token", dependencies=[Depends(faults.injector(state))])(
        _token(settings=settings, state=state, clock=clock)
    )
    return routes


def _authorize(
    *,
    settings: FakeSpotifySettings,
    spec: pop.PopulationSpec,
    state: FakeState,
    clock: Callable[[], float],
) -> Callable[..., Awaitable[Response]]:
    async def authorize(
        client_id: str = "",
        response_type: str = "",
        redirect_uri: str = "",
        scope: str = "",
        state_: Annotated[str | None, Query(alias="state")] = None,
        show_dialog: str | None = None,
        login_hint: str | None = None,
    ) -> Response:
        # Spotify shows these on its own page rather than redirecting
        if client_id != settings.client_id:
            return PlainTextResponse("INVALID_CLIENT: Invalid client", status_code=400)
        if not redirect_uri.startswith(("http://", "https://")):
            return PlainTextResponse("INVALID_CLIENT: Invalid redirect URI", status_code=400)
        params: dict[str, str] = {}
        if response_type != "code":
            params["error"] = "unsupported_response_type"
        else:
            user = _consenting_user(login_hint, spec, state)
            code = secrets.token_urlsafe(32)
            state.codes[code] = Code(user, redirect_uri, scope, clock() + CODE_LIFETIME)
            params["code"] = code
        if state_ is not None:
            params["state"] = state_
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    return authorize


def _consenting_user(hint: str | None, spec: pop.PopulationSpec, state: FakeState) -> int:
    """The hinted user, or else the next one in order."""
    user = _hinted_user(hint, spec)
    if user is None:
        user = state.next_user % spec.users
        state.next_user += 1
    return user


def _hinted_user(hint: str | None, spec: pop.PopulationSpec) -> int | None:
    if not hint:
        return None
    index = int(hint) if hint.isdigit() else pop.user_index(hint)
    if index is None or not 0 <= index < spec.users:
        return None
    return index


def _token(
    *, settings: FakeSpotifySettings, state: FakeState, clock: Callable[[], float]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def token(
        grant_type: Annotated[str, Form()] = "",
        code: Annotated[str | None, Form()] = None,
        redirect_uri: Annotated[str | None, Form()] = None,
        refresh_token: Annotated[str | None, Form()] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        state.token_requests += 1
        _check_client(settings, authorization, client_id, client_secret)
        now = clock()
        if grant_type == "authorization_code":
            return _exchange(state, settings, code=code, redirect_uri=redirect_uri, now=now)
        if grant_type == "refresh_token":
            return _refresh(state, settings, refresh_token=refresh_token, now=now)
        if not grant_type:
            raise OAuthError("unsupported_grant_type", "grant_type parameter is missing")
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type must be authorization_code or refresh_token, not {grant_type}",
        )

    return token


def _check_client(
    settings: FakeSpotifySettings,
    authorization: str | None,
    client_id: str | None,
    client_secret: str | None,
) -> None:
    if authorization and authorization.startswith("Basic "):
        try:
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, client_secret = decoded.partition(":")
    if client_id != settings.client_id or client_secret != settings.client_secret:
        raise OAuthError("invalid_client", "Invalid client")


def _exchange(
    state: FakeState,
    settings: FakeSpotifySettings,
    *,
    code: str | None,
    redirect_uri: str | None,
    now: float,
) -> dict[str, Any]:
    # single use: a replayed code fails even if the first exchange did
    found = state.codes.pop(code or "", None)
    if found is None or found.expires_at < now:
        raise OAuthError("invalid_grant", "Invalid authorization code")
    if redirect_uri != found.redirect_uri:
        raise OAuthError("invalid_grant", "Invalid redirect URI")
    refresh = secrets.token_urlsafe(48)
    state.refresh[refresh] = Grant(found.user, found.scope)
    return _issue(state, settings, found.user, found.scope, now) | {"refresh_token": refresh}


def _refresh(
    state: FakeState, settings: FakeSpotifySettings, *, refresh_token: str | None, now: float
) -> dict[str, Any]:
    grant = state.refresh.get(refresh_token or "")
    if grant is None:
        raise OAuthError("invalid_grant", "Invalid refresh token")
    grant.refreshes += 1
    body = _issue(state, settings, grant.user, grant.scope, now)
    every = settings.rotate_refresh_every
    if every > 0 and grant.refreshes % every == 0:
        rotated = secrets.token_urlsafe(48)
        del state.refresh[refresh_token or ""]
        state.refresh[rotated] = grant
        body["refresh_token"] = rotated
    return body


def _issue(
    state: FakeState, settings: FakeSpotifySettings, user: int, scope: str, now: float
) -> dict[str, Any]:
    access = secrets.token_urlsafe(48)
    state.access[access] = Access(user, scope, now + settings.token_lifetime)
    return {
        "access_token": access,
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": settings.token_lifetime,
    }
