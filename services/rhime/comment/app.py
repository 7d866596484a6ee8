"""The comment component: comment on existing posts, list newest first, count, delete."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import Field

from rhime import blocking, events
from rhime.comment import comment_routes, comments, internal, posts
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    page_size: int = Field(default=10, description="comments per page of a post's comments")


def create(settings: Settings) -> FastAPI:
    return kit_app.create_app(
        settings,
        title="comment",
        database="comment",
        api_prefix="/api/comments",
        routers=[comment_routes.router(page_size=settings.page_size), internal.router()],
        indexes=comments.INDEXES,
        outboxes=[comments.COLLECTION],
        subscriptions=subscriptions,
    )


def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
    async def created(event: events.PostCreated) -> None:
        await posts.on_created(kit, event)

    async def deleted(event: events.PostDeleted) -> None:
        await posts.on_deleted(kit, event)

    async def user_deleted(event: events.UserDeleted) -> None:
        await comments.delete_all(kit, user_id=event.user_id)
        await blocking.forget(kit.database, user_id=event.user_id)

    async def block_changed(event: blocking.Change) -> None:
        await blocking.apply(kit.database, event)

    return [
        bus.Subscription(event=events.PostCreated, handler=created),
        bus.Subscription(event=events.PostDeleted, handler=deleted),
        # many comments take a while; what a timeout interrupts, a redelivery finishes
        bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
        bus.Subscription(event=events.UserBlocked, handler=block_changed),
        bus.Subscription(event=events.UserUnblocked, handler=block_changed),
    ]
