"""The like component: like and unlike posts and comments (idempotent), "is it liked by me"
for one or many items, and the feed's per-page summary (counts and my likes in one call)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import Field

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import internal, items, like_routes, mine, state


class Settings(KitSettings):
    overlay_seconds: int = Field(
        default=300,
        description="seconds a person's own likes and unlikes are read back from Redis, so they "
        "show before like-updater has stored them",
    )


def create(settings: Settings) -> FastAPI:
    return kit_app.create_app(
        settings,
        title="like",
        database="likes",
        api_prefix="/api/likes",
        routers=[like_routes.router(overlay_seconds=settings.overlay_seconds), internal.router()],
        indexes={state.COLLECTION: state.INDEXES},
        subscriptions=subscriptions,
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
