"""Routes for other components: the names of accounts, and an account's data export."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Any

from fastapi import APIRouter

from rhime.auth import accounts
from rhime.auth.models import Ids
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/auth", tags=["internal"])

    @routes.post("/names")
    async def names(
        body: Ids, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, dict[str, str]]:
        """The userName of each live account among up to 100 ids (components only): for a
        component whose copy, fed by `user.created`, has not heard of a new person yet."""
        return {"names": await accounts.names(kit, ids=body.ids)}

    @routes.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """The account's part of its owner's data export (components only)."""
        return await accounts.export(kit, user_id=user_id)

    return routes
