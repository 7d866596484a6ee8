"""Blocking: block and unblock someone, and whom the caller blocks."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.graph import follows
from rhime.graph.models import ERRORS, After, Blocking, Page, UserId
from rhime.kit import app as kit_app
from rhime.kit import identity


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/graph", tags=["graph"], responses=ERRORS)

    @routes.put("/blocks/{userId}", responses={403: {"description": "Yourself"}})
    async def block(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Blocking:
        """Block the user: neither of you can follow the other (follows both ways end), see
        the other's posts, comment on or like them, find the other in search, or be
        recommended to the other. Idempotent."""
        now = await follows.set_blocking(kit, blocker=user.user_id, blocked=user_id, active=True)
        return Blocking(blocking=now)

    @routes.delete("/blocks/{userId}", responses={403: {"description": "Yourself"}})
    async def unblock(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Blocking:
        """Lift your block (the follows it ended stay ended). Idempotent."""
        now = await follows.set_blocking(kit, blocker=user.user_id, blocked=user_id, active=False)
        return Blocking(blocking=now)

    @routes.get("/blocks")
    async def blocked(user: identity.User, after: After, kit: kit_app.KitDep) -> Page:
        """Whom I block, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.blocked_page(kit, blocker=user.user_id, after=after)
        return Page(user_ids=ids, next=cursor)

    return routes
