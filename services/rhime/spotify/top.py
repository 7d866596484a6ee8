"""A person's top artists, tracks or genres, as the taste fetched from Spotify holds them."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from rhime.kit import app as kit_app
from rhime.kit import errors, identity
from rhime.music import store, tastes


class TopItem(BaseModel):
    id: str
    name: str
    weight: float


class TopOut(BaseModel):
    userId: str
    kind: str
    timeRange: str
    updatedAt: datetime.datetime
    items: list[TopItem]


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/spotify", tags=["spotify"])

    @routes.get("/users/{userId}/top/{kind}")
    async def top_items(
        user_id: Annotated[str, Path(alias="userId", min_length=1, max_length=64)],
        kind: Literal["artists", "tracks", "genres"],
        _caller: identity.User,
        kit: kit_app.KitDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> TopOut:
        doc = await kit.database[store.TASTES].find_one(
            {"_id": user_id}, {"raw": 1, "names": 1, "timeRange": 1, "fetchedAt": 1}
        )
        if doc is None:
            raise errors.not_found("No music taste is known for this user yet.")
        return TopOut(
            userId=user_id,
            kind=kind,
            timeRange=doc.get("timeRange", ""),
            updatedAt=doc["fetchedAt"],
            items=[TopItem(**item) for item in tastes.top(doc, category=kind, limit=limit)],
        )

    return routes
