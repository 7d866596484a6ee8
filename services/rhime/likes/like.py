"""The like component: like and unlike posts and comments (idempotent), "is it liked by me"
for one or many items, and the feed's per-page summary (counts and my likes in one call)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import Field

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus, identity
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import counts, items, mine, models, state


class Settings(KitSettings):
    overlay_seconds: int = Field(
        default=300,
        description="seconds a person's own likes and unlikes are read back from Redis, so they "
        "show before like-updater has stored them",
    )


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/likes", tags=["likes"])
    internal = APIRouter(prefix="/internal/likes", tags=["internal"])

    async def act(kit: kit_app.Kit, user: identity.Identity, item_id: str, liked: bool) -> bool:
        return await mine.set_liked(
            kit,
            user_id=user.user_id,
            item_id=models.check_id(item_id, what="itemId"),
            liked=liked,
            overlay_seconds=settings.overlay_seconds,
        )

    @router.put("/{item_id}")
    async def like(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        return models.Liked(isLiked=await act(kit, user, item_id, True))

    @router.delete("/{item_id}")
    async def unlike(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        return models.Liked(isLiked=await act(kit, user, item_id, False))

    @router.get("/{item_id}")
    async def is_liked(item_id: str, user: identity.User, kit: kit_app.KitDep) -> models.Liked:
        item_id = models.check_id(item_id, what="itemId")
        found = await mine.liked_many(kit, user_id=user.user_id, item_ids=[item_id])
        return models.Liked(isLiked=found[item_id])

    @router.post("/liked")
    async def liked_many(
        body: models.Ids, user: identity.User, kit: kit_app.KitDep
    ) -> models.LikedMany:
        found = await mine.liked_many(kit, user_id=user.user_id, item_ids=body.ids)
        return models.LikedMany(liked=found)

    @internal.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """What the user likes, for their data export (components only)."""
        return {"likes": await state.export(kit, user_id=user_id)}

    @internal.post("/summary")
    async def summary(
        body: models.Summary, _: identity.Service, kit: kit_app.KitDep
    ) -> models.Summaries:
        found = await mine.liked_many(kit, user_id=body.userId, item_ids=body.ids)
        numbers = await counts.get_many(kit, item_ids=body.ids)
        return models.Summaries(
            items={
                i: models.ItemSummary(count=numbers.get(i, 0), liked=found.get(i, False))
                for i in body.ids
            }
        )

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def user_deleted(event: events.UserDeleted) -> None:
            await mine.forget_all(kit, user_id=event.user_id)

        async def block_changed(event: blocking.Change) -> None:
            await blocking.apply(kit.database, event)

        return [
            *items.subscriptions(kit),
            # many likes take a while; what a timeout interrupts, a redelivery finishes
            bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
            bus.Subscription(event=events.UserBlocked, handler=block_changed),
            bus.Subscription(event=events.UserUnblocked, handler=block_changed),
        ]

    return kit_app.create_app(
        settings,
        title="like",
        database="likes",
        api_prefix="/api/likes",
        routers=[router, internal],
        indexes={state.COLLECTION: state.INDEXES},
        subscriptions=subscriptions,
    )
