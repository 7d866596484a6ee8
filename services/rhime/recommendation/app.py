"""The recommendation service: my recommendations, best first, with an explanation; dismiss one."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import asyncio
import base64
import binascii
import datetime
import functools
import logging
import math
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import BaseModel

from rhime import blocking
from rhime.graphview import client as graphview
from rhime.kit import app as kit_app
from rhime.kit import errors, identity, ids
from rhime.recommendation import consumers, follows, store
from rhime.recommendation.settings import Settings

log = logging.getLogger("rhime.recommendation")

MAX_ROUNDS = 5  # pages read to fill one page when filtered ones are skipped
DISMISSED_UNTIL = "dismissedUntil"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


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


def encode_cursor(similarity: float, other_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([similarity, other_id])).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position `encode_cursor` wrote; 400 for anything else. Only a finite number and a
    string reach the query: a NaN there makes the Mongo-wire server drop the connection."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError):
        decoded = None
    match decoded:
        case [int() | float() as similarity, str() as other_id] if not isinstance(
            similarity, bool
        ) and math.isfinite(similarity):
            return float(similarity), other_id
    raise errors.bad_request("The cursor is not valid.", field="cursor")


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


async def bring_back(db: Any, *, user_id: str, now: datetime.datetime) -> None:
    """Dismissals whose period is over: the person may be shown again. One never computed
    (dismissed before any match was stored) is dropped instead: the next computation brings
    it back if the match holds. Dismissals without an end (older ones) stay."""
    recs = db[store.RECOMMENDATIONS]
    over = {"userId": user_id, "dismissed": True, DISMISSED_UNTIL: {"$lte": now}}
    await recs.delete_many({**over, "similarity": {"$lte": 0}})
    await recs.update_many(over, {"$set": {"dismissed": False}, "$unset": {DISMISSED_UNTIL: ""}})


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/recommendations", tags=["recommendations"])

    async def open_channel(kit: kit_app.Kit) -> None:
        kit.extras["graphview"] = (
            graphview.channel(settings, tracing=kit.tracing) if settings.use_graph_view else None
        )

    @router.get("")
    async def mine(
        user: identity.User,
        kit: kit_app.KitDep,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Page:
        """My recommendations, best first, a page at a time."""
        position = decode_cursor(cursor) if cursor else None
        if position is None:  # once per reading, on its first page
            await bring_back(kit.database, user_id=user.user_id, now=_now())
        channel: grpc.aio.Channel | None = kit.extras.get("graphview")
        # a follow or a block made after the computation hides the person at once
        hidden = await follows.followees(channel, user_id=user.user_id)
        hidden |= await blocking.hidden(kit.database, user_id=user.user_id)
        docs, following = await read_page(
            kit.database,
            user_id=user.user_id,
            size=settings.page_size,
            cursor=position,
            hidden=hidden,
        )
        return Page(
            recommendations=[
                Recommendation(
                    userId=doc["otherId"],
                    similarity=round(doc.get("taste", doc["similarity"]), 4),
                    percent=round(doc.get("taste", doc["similarity"]) * 100),
                    score=round(doc["similarity"], 4),
                    explanation=Explanation(**doc.get("explanation") or _EMPTY),
                )
                for doc in docs
            ],
            next=encode_cursor(*following) if following else None,
        )

    @router.post("/{userId}/dismiss", status_code=204)
    async def dismiss(
        user_id: Annotated[str, Path(alias="userId")],
        user: identity.User,
        kit: kit_app.KitDep,
    ) -> Response:
        """Not now: hide this person for `RHIME_DISMISS_DAYS` (30) days; recomputation keeps
        it hidden meanwhile. Dismissing again starts the period again."""
        other_id = ids.object_id(user_id, what="userId")
        if other_id == user.user_id:
            raise errors.bad_request("You cannot dismiss yourself.", field="userId")
        db = kit.database
        rec_id = store.recommendation_id(user.user_id, other_id)
        # only someone who was or can be recommended: who ever connected Spotify; otherwise
        # any id would leave a dismissal behind
        known = await db[store.RECOMMENDATIONS].find_one({"_id": rec_id}, {"_id": 1}) or await db[
            store.TOKENS
        ].find_one({"_id": other_id}, {"_id": 1})
        if known is None:
            raise errors.not_found("The user cannot be found.")
        until = _now() + datetime.timedelta(days=settings.dismiss_days)
        await db[store.RECOMMENDATIONS].update_one(
            {"_id": rec_id},
            {
                "$set": {"dismissed": True, DISMISSED_UNTIL: until},
                # dismissing before it is computed still keeps the person away
                "$setOnInsert": {"userId": user.user_id, "otherId": other_id, "similarity": 0.0},
            },
            upsert=True,
        )
        return Response(status_code=204)

    async def close_channel(kit: kit_app.Kit) -> None:
        try:
            await _forever()
        finally:
            channel = kit.extras.get("graphview")
            if channel is not None:
                await channel.close(grace=None)
            if "rq" in kit.extras:
                kit.extras["rq"].close()

    indexes: Any = store.INDEXES
    return kit_app.create_app(
        settings,
        title="recommendation",
        database=store.DATABASE,
        api_prefix="/api/recommendations",
        routers=[router],
        indexes=indexes,
        on_ready=[open_channel],
        subscriptions=functools.partial(consumers.subscriptions, settings=settings),
        # the worker stages `user.recommended` here; this component publishes it
        outboxes=[store.ANNOUNCED],
        tasks=[close_channel],
        description="My friend recommendations with an explanation; dismiss one.",
    )


_EMPTY: dict[str, Any] = {
    "commonArtists": [],
    "commonTracks": [],
    "commonGenres": [],
    "breakdown": {},
}


async def _forever() -> None:
    await asyncio.Event().wait()
