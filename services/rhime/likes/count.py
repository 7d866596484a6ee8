"""The like-count component: like counts of one item or many in one call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query

from rhime.kit import app as kit_app
from rhime.kit import errors, identity
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import counts, models


class Settings(KitSettings):
    pass


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/like-counts", tags=["likes"])
    internal = APIRouter(prefix="/internal/like-counts", tags=["internal"])

    @router.get("")
    async def many(
        _: identity.Caller,
        kit: kit_app.KitDep,
        ids: Annotated[str, Query(min_length=1, max_length=2600)],
    ) -> models.Counts:
        wanted = [models.check_id(i.strip(), what="ids") for i in ids.split(",") if i.strip()]
        if not wanted or len(wanted) > counts.MAX_IDS:
            raise errors.bad_request(f"Give 1 to {counts.MAX_IDS} ids.", field="ids")
        return models.Counts(counts=await counts.get_many(kit, item_ids=wanted))

    @router.get("/{item_id}")
    async def one(item_id: str, _: identity.Caller, kit: kit_app.KitDep) -> models.Count:
        item_id = models.check_id(item_id, what="itemId")
        return models.Count(count=(await counts.get_many(kit, item_ids=[item_id]))[item_id])

    @internal.post("")
    async def batch(body: models.Ids, _: identity.Service, kit: kit_app.KitDep) -> models.Counts:
        return models.Counts(counts=await counts.get_many(kit, item_ids=body.ids))

    return kit_app.create_app(
        settings,
        title="like-count",
        database="likes",
        nats=False,
        api_prefix="/api/like-counts",
        routers=[router, internal],
        indexes=counts.INDEXES,
    )
