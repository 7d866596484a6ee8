"""My recommendations, best first, a page at a time, each with why."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Query
from pydantic import BaseModel

from rhime import blocking
from rhime.graphview import client as graphview
from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.kit.kit import Resource
from rhime.recommendation import dismissal, follows, store
from rhime.recommendation.cursor import decode as decode_cursor
from rhime.recommendation.cursor import encode as encode_cursor
from rhime.recommendation.settings import Settings

MAX_ROUNDS = 5  # pages read to fill one page when filtered ones are skipped


class Item(BaseModel):
    id: str
    name: str


class Explanation(BaseModel):
    commonArtists: list[Item]
    commonTracks: list[Item]
    commonGenres: list[Item]
    breakdown: dict[str, float]
    # people I follow who follow them: how many, and the ids of the most telling few
    mutualFollows: int = 0
    followedBy: list[str] = []


class Recommendation(BaseModel):
    userId: str
    similarity: float  # taste alone, as `percent`
    percent: int
    score: float  # the ranking: taste raised by closeness in the follow graph
    explanation: Explanation


class Page(BaseModel):
    recommendations: list[Recommendation]
    next: str | None


_EMPTY: dict[str, Any] = {
    "commonArtists": [],
    "commonTracks": [],
    "commonGenres": [],
    "breakdown": {},
}


def recommendation(doc: dict[str, Any]) -> Recommendation:
    return Recommendation(
        userId=doc["otherId"],
        similarity=round(doc.get("taste", doc["similarity"]), 4),
        percent=round(doc.get("taste", doc["similarity"]) * 100),
        score=round(doc["similarity"], 4),
        explanation=Explanation(**doc.get("explanation") or _EMPTY),
    )


async def read_page(
    db: Any,
    *,
    user_id: str,
    size: int,
    cursor: tuple[float, str] | None,
    hidden: set[str],
) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
    """Keyset pages on (similarity desc, otherId asc), skipping hidden and disconnected
    people; returns up to `size` documents and the next cursor."""
    recs = db[store.RECOMMENDATIONS]
    shown: list[dict[str, Any]] = []
    position = cursor
    for _ in range(MAX_ROUNDS):
        query: dict[str, Any] = {"userId": user_id, "dismissed": False}
        if position is not None:
            similarity, other = position
            query["$or"] = [
                {"similarity": {"$lt": similarity}},
                {"similarity": similarity, "otherId": {"$gt": other}},
            ]
        batch = [
            doc
            async for doc in recs.find(query)
            .sort([("similarity", -1), ("otherId", 1)])
            .limit(size + 1)
        ]
        if not batch:
            return shown, None
        other_ids = [doc["otherId"] for doc in batch]
        connected = {
            doc["_id"]
            async for doc in db[store.TOKENS].find(
                {"_id": {"$in": other_ids}, "connected": True}, {"_id": 1}
            )
        }
        for doc in batch:
            if len(shown) == size:
                last = shown[-1]
                return shown, (last["similarity"], last["otherId"])
            position = (doc["similarity"], doc["otherId"])
            if doc["otherId"] in connected and doc["otherId"] not in hidden:
                shown.append(doc)
        if len(batch) <= size:
            return shown, None
    if shown:
        return shown, (shown[-1]["similarity"], shown[-1]["otherId"])
    return shown, position


@contextlib.asynccontextmanager
async def _open_graph_view(kit: kit_app.Kit) -> AsyncIterator[grpc.aio.Channel | None]:
    assert isinstance(kit.settings, Settings)
    if not kit.settings.use_graph_view:
        yield None
        return
    channel = graphview.channel(kit.settings, tracing=kit.tracing)
    try:
        yield channel
    finally:
        await channel.close(grace=None)


# the follows a page hides, asked of user-graph-view (None: not deployed)
GRAPH_VIEW = Resource("graphview", open=_open_graph_view)


def router(*, page_size: int) -> APIRouter:
    routes = APIRouter(prefix="/api/recommendations", tags=["recommendations"])

    @routes.get("")
    async def mine(
        user: identity.User,
        kit: kit_app.KitDep,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Page:
        """My recommendations, best first, a page at a time."""
        position = decode_cursor(cursor) if cursor else None
        if position is None:  # once per reading, on its first page
            await dismissal.bring_back(kit.database, user_id=user.user_id, now=dismissal.now())
        channel = kit.resource(GRAPH_VIEW)
        # a follow or a block made after the computation hides the person at once
        hidden = await follows.followees(channel, user_id=user.user_id)
        hidden |= await blocking.hidden(kit.database, user_id=user.user_id)
        docs, following = await read_page(
            kit.database,
            user_id=user.user_id,
            size=page_size,
            cursor=position,
            hidden=hidden,
        )
        return Page(
            recommendations=[recommendation(doc) for doc in docs],
            next=encode_cursor(*following) if following else None,
        )

    return routes
