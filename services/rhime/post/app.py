"""The post component: share a track with a caption, read, list, count and delete posts."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import Field

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.settings import Settings as KitSettings
from rhime.post import internal, post_routes, posts


class Settings(KitSettings):
    page_size: int = Field(
        default=10, description="posts per page of a user's posts when no `limit` is given"
    )


def create(settings: Settings) -> FastAPI:
    return kit_app.create_app(
        settings,
        title="post",
        database="post",
        api_prefix="/api/posts",
        routers=[post_routes.router(page_size=settings.page_size), internal.router()],
        indexes=posts.INDEXES,
        outboxes=[posts.COLLECTION],
        subscriptions=subscriptions,
    )


def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
    async def on_user_deleted(event: events.UserDeleted) -> None:
        await posts.delete_all(kit, user_id=event.user_id)

    # a prolific person's posts take a while; what a timeout interrupts, a redelivery
    # finishes
    return [bus.Subscription(event=events.UserDeleted, handler=on_user_deleted, ack_wait=90.0)]
