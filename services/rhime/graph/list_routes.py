"""A person's followers and following: the counts and the lists."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.graph import follows
from rhime.graph.models import ERRORS, After, Counts, Page, UserId
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/graph", tags=["graph"], responses=ERRORS)

    @routes.get("/users/{userId}/counts")
    async def counts(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Counts:
        """Follower and following counts."""
        found = await follows.counts(kit, user_id=user_id)
        return Counts(followers=found.followers, following=found.following)

    @routes.get("/users/{userId}/followers")
    async def followers(
        user: identity.User, user_id: UserId, after: After, kit: kit_app.KitDep
    ) -> Page:
        """Who follows the user, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.page(kit, user_id=user_id, direction="followers", after=after)
        return Page(user_ids=ids, next=cursor)

    @routes.get("/users/{userId}/following")
    async def following(
        user: identity.User, user_id: UserId, after: After, kit: kit_app.KitDep
    ) -> Page:
        """Whom the user follows, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.page(kit, user_id=user_id, direction="following", after=after)
        return Page(user_ids=ids, next=cursor)

    return routes
