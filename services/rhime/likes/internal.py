"""Routes for other components: a person's likes for their data export, and the feed's
per-page summary (counts and the reader's likes in one call)."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Any

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.likes import counts, mine, models, state


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/likes", tags=["internal"])

    @routes.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """What the user likes, for their data export (components only)."""
        return {"likes": await state.export(kit, user_id=user_id)}

    @routes.post("/summary")
    async def summary(
        body: models.Summary, _: identity.Service, kit: kit_app.KitDep
    ) -> models.Summaries:
        found = await mine.liked_many(kit, user_id=body.userId, item_ids=body.ids)
        numbers = await counts.get_many(kit, item_ids=body.ids)
        return models.Summaries(
            items={
                i: models.ItemSummary(count=numbers.get(i, 0), liked=found.get(i, False))
                for i in body.ids
            }
        )

    return routes
