"""Finding people by name."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Annotated

from fastapi import APIRouter, Query

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.user import profiles, search
from rhime.user.models import ERRORS, Card, Found


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/users", tags=["users"], responses=ERRORS)

    @routes.get("/search")
    async def find_people(
        user: identity.User,
        kit: kit_app.KitDep,
        q: Annotated[str, Query(max_length=200)] = "",
        after: Annotated[str | None, Query(max_length=400)] = None,
    ) -> Found:
        """People whose userName, display name, or a word of their display name starts with
        `q` (1 to 50 characters; case and accents ignored), 20 a page in that term's order.
        People who block me or whom I block are never found."""
        term = search.query(q)
        anchor = search.after(after) if after else None
        found, next_ = await profiles.find(kit, viewer=user.user_id, q=term, after=anchor)
        return Found(users=[Card(**c) for c in found], next=next_)

    return routes
