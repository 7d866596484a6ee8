"""Routes for other components: a person's comments for their data export, and the counts
of many posts' comments at once."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.comment import comments, models
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/comments", tags=["internal"])

    @routes.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[models.CommentOut]]:
        """The user's comments, for their data export (components only)."""
        return {"comments": await comments.export(kit, user_id=user_id)}

    @routes.post("/counts")
    async def batch_counts(
        body: models.Ids, _: identity.Service, kit: kit_app.KitDep
    ) -> models.Counts:
        return models.Counts(counts=await comments.counts(kit, post_ids=body.ids))

    return routes
