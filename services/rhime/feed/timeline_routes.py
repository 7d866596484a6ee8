"""The timelines people read: my home timeline and a person's own posts."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Annotated, Any

from fastapi import APIRouter, Query

from rhime.feed import pages
from rhime.kit import app as kit_app
from rhime.kit import identity, ids

Before = Annotated[str | None, Query(max_length=24)]
Limit = Annotated[int, Query(ge=1, le=50)]


def object_id(value: str | None, *, what: str) -> str | None:
    if value is None:
        return None
    return ids.object_id(value, what=what)


def router(*, limits: pages.Limits, page_size: int) -> APIRouter:
    routes = APIRouter(prefix="/api/feed", tags=["feed"])

    @routes.get("")
    async def home(
        user: identity.User,
        kit: kit_app.KitDep,
        before: Before = None,
        limit: Limit = page_size,
    ) -> dict[str, Any]:
        """My home timeline: posts of the people I follow and mine, newest first."""
        return await pages.home(
            kit,
            user_id=user.user_id,
            before=object_id(before, what="before"),
            limit=limit,
            limits=limits,
        )

    @routes.get("/users/{user_id}")
    async def profile(
        user_id: str,
        user: identity.User,
        kit: kit_app.KitDep,
        before: Before = None,
        limit: Limit = page_size,
    ) -> dict[str, Any]:
        """A person's own posts, newest first; none while one of us blocks the other."""
        author = object_id(user_id, what="userId")
        assert author is not None
        return await pages.profile(
            kit,
            viewer=user.user_id,
            user_id=author,
            before=object_id(before, what="before"),
            limit=limit,
            limits=limits,
        )

    return routes
