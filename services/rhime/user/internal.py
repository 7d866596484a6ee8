"""Routes for other components: author cards."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.user import profiles
from rhime.user.models import Card, Cards, CardsRequest


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/users", tags=["internal"])

    @routes.post("/cards")
    async def cards(body: CardsRequest, caller: identity.Service, kit: kit_app.KitDep) -> Cards:
        """Author cards for up to 100 ids (internal: components only)."""
        found = await profiles.cards(kit, ids=body.ids)
        return Cards(cards={k: Card(**v) for k, v in found.items()})

    return routes
