"""Routes for other components: a person's data export, and the gateway's connected check."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.music.spotify import tokens
from rhime.spotify import archive


class ConnectedOut(BaseModel):
    connected: bool


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal", include_in_schema=False)

    @routes.get("/spotify/export/{user_id}")
    async def export(user_id: str, _caller: identity.Service, kit: kit_app.KitDep) -> Any:
        """Spotify connection, taste and recommendations, for the user's data export
        (components only; never the tokens)."""
        return await archive.export(kit.database, user_id=user_id)

    @routes.get("/connected/{user_id}")
    async def connected(
        user_id: str, _caller: identity.Service, kit: kit_app.KitDep
    ) -> ConnectedOut:
        return ConnectedOut(connected=await tokens.is_connected(kit.database, user_id=user_id))

    return routes
