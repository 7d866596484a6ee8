"""The caller's Spotify connection: connect (OAuth), their access token, disconnect."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from rhime.kit import app as kit_app
from rhime.kit import identity, outbox
from rhime.music import store, tastes
from rhime.music.spotify import tokens
from rhime.spotify import access, consent, oauth
from rhime.spotify.settings import Settings


class AuthorizeOut(BaseModel):
    url: str


class TokenOut(BaseModel):
    token: str
    expiresAt: datetime.datetime


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/api/spotify", tags=["spotify"])

    @routes.get("/authorize", response_model=None)
    async def authorize(request: Request, user: identity.User, kit: kit_app.KitDep) -> Response:
        """Send the browser to Spotify's consent page (JSON clients get the URL)."""
        url = await oauth.begin(kit.redis, settings=settings, user_id=user.user_id)
        if consent.wants_json(request):
            return JSONResponse(AuthorizeOut(url=url).model_dump())
        return RedirectResponse(url, status_code=302)

    @routes.get("/callback", response_model=None)
    async def callback(
        request: Request,
        user: identity.User,
        kit: kit_app.KitDep,
        code: Annotated[str | None, Query(max_length=2000)] = None,
        state: Annotated[str | None, Query(max_length=200)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        outcome = await consent.finish(
            kit, settings=settings, user_id=user.user_id, state=state, code=code, error=error
        )
        return consent.respond(request, outcome)

    @routes.get("/token")
    async def token(user: identity.User, kit: kit_app.KitDep) -> TokenOut:
        """The caller's access token, refreshed first when it expires within a minute."""
        value, expires = await access.token(kit, settings=settings, user_id=user.user_id)
        return TokenOut(token=value, expiresAt=expires)

    @routes.delete("/connection", status_code=204)
    async def disconnect(user: identity.User, kit: kit_app.KitDep) -> Response:
        """Delete the tokens (publishing `user.disconnected`, which closes the gate), then
        the taste, index entries and recommendations."""
        await tokens.disconnect(kit.database, user_id=user.user_id)
        await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user.user_id)
        await tastes.forget(kit.database, user_id=user.user_id)
        return Response(status_code=204, headers={consent.CONNECTED_HEADER: "0"})

    return routes
