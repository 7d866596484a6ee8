"""Routes for other components: a person's notifications, for their data export."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Any

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.notification import inbox


def router(*, keep: int) -> APIRouter:
    routes = APIRouter(prefix="/internal/notifications", tags=["internal"])

    @routes.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """Every notification the user has, for their data export (components only)."""
        body = await inbox.page(kit, recipient=user_id, before=None, limit=keep)
        return {"notifications": body["notifications"]}

    return routes
