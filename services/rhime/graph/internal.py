"""Routes for other components: a person's follows, for their data export."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.graph import follows
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/graph", tags=["internal"])

    @routes.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[str]]:
        """Whom the user follows and who follows them, for their data export (components
        only)."""
        return await follows.export(kit, user_id=user_id)

    return routes
