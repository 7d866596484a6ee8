"""My likes: like and unlike a post or comment (idempotent), and whether I like one or many."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.likes import mine, models


def router(*, overlay_seconds: int) -> APIRouter:
    routes = APIRouter(prefix="/api/likes", tags=["likes"])

    async def act(kit: kit_app.Kit, user: identity.Identity, item_id: str, liked: bool) -> bool:
        return await mine.set_liked(
            kit,
            user_id=user.user_id,
            item_id=models.check_id(item_id, what="itemId"),
            liked=liked,
            overlay_seconds=overlay_seconds,
        )

    @routes.put("/{item_id}")
    async def like(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        return models.Liked(isLiked=await act(kit, user, item_id, True))

    @routes.delete("/{item_id}")
    async def unlike(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        return models.Liked(isLiked=await act(kit, user, item_id, False))

    @routes.get("/{item_id}")
    async def is_liked(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        item_id = models.check_id(item_id, what="itemId")
        found = await mine.liked_many(kit, user_id=user.user_id, item_ids=[item_id])
        return models.Liked(isLiked=found[item_id])

    @routes.post("/liked")
    async def liked_many(
        body: models.Ids, user: identity.User, kit: kit_app.KitDep
    ) -> models.LikedMany:
        found = await mine.liked_many(kit, user_id=user.user_id, item_ids=body.ids)
        return models.LikedMany(liked=found)

    return routes
