"""Routes for other components: a person's posts for their data export, and many posts by
id at once."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.post import models, posts


def router() -> APIRouter:
    routes = APIRouter(prefix="/internal/posts", tags=["internal"])

    @routes.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[models.PostOut]]:
        """The user's posts, for their data export (components only)."""
        return {"posts": await posts.export(kit, user_id=user_id)}

    @routes.post("/batch")
    async def batch(body: models.Ids, _: identity.Service, kit: kit_app.KitDep) -> models.PostsById:
        return models.PostsById(posts=await posts.get_many(kit, post_ids=body.ids))

    return routes
