"""Not now: hide a person from my recommendations for a while."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from rhime.kit import app as kit_app
from rhime.kit import errors, identity, ids
from rhime.recommendation import store

DISMISSED_UNTIL = "dismissedUntil"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def bring_back(db: Any, *, user_id: str, now: datetime.datetime) -> None:
    """Dismissals whose period is over: the person may be shown again. One never computed
    (dismissed before any match was stored) is dropped instead: the next computation brings
    it back if the match holds. Dismissals without an end (older ones) stay."""
    recs = db[store.RECOMMENDATIONS]
    over = {"userId": user_id, "dismissed": True, DISMISSED_UNTIL: {"$lte": now}}
    await recs.delete_many({**over, "similarity": {"$lte": 0}})
    await recs.update_many(over, {"$set": {"dismissed": False}, "$unset": {DISMISSED_UNTIL: ""}})


def router(*, dismiss_days: int) -> APIRouter:
    routes = APIRouter(prefix="/api/recommendations", tags=["recommendations"])

    @routes.post("/{userId}/dismiss", status_code=204)
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
        until = now() + datetime.timedelta(days=dismiss_days)
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

    return routes
