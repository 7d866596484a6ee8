"""Following: follow and unfollow someone, and how the caller and they relate."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.graph import follows
from rhime.graph.models import ERRORS, Following, Relationship, UserId
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/graph", tags=["graph"], responses=ERRORS)

    @routes.put("/following/{userId}", responses={403: {"description": "Yourself"}})
    async def follow(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Following:
        """Follow the user. Idempotent: following again changes nothing."""
        now = await follows.set_following(kit, follower=user.user_id, followee=user_id, active=True)
        return Following(following=now)

    @routes.delete("/following/{userId}", responses={403: {"description": "Yourself"}})
    async def unfollow(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Following:
        """Stop following the user. Idempotent."""
        now = await follows.set_following(
            kit, follower=user.user_id, followee=user_id, active=False
        )
        return Following(following=now)

    @routes.get("/relationship/{userId}", responses={403: {"description": "Yourself"}})
    async def relationship(
        user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Relationship:
        """Whether you follow the user and whether the user follows you."""
        following, followed_by, blocking = await follows.relationship(
            kit, caller=user.user_id, target=user_id
        )
        return Relationship(following=following, followed_by=followed_by, blocking=blocking)

    return routes
