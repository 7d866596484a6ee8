"""user: `/api/users` — profiles and profile images; `/internal/users/cards` for services."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.user import (
    export_routes,
    image_routes,
    images,
    internal,
    profile_routes,
    profiles,
    search_routes,
)
from rhime.user.settings import Settings

# tests and the catalogue find the settings here, beside `create`
__all__ = ["PREFIX", "Settings", "create"]

PREFIX = "/api/users"


def create(settings: Settings) -> FastAPI:
    store = store_of(settings)
    return kit_app.create_app(
        settings,
        title="user",
        description="Profiles, profile images and author cards.",
        database="user",
        api_prefix=PREFIX,
        # /search and /me/export before /{userId}, which would take them
        routers=[
            search_routes.router(),
            export_routes.router(),
            profile_routes.router(),
            image_routes.router(store=store),
            internal.router(),
        ],
        subscriptions=functools.partial(subscriptions, store=store),
        on_ready=[functools.partial(bucket, settings=settings, store=store)],
        tasks=[profiles.keep_search_built],
    )


def store_of(settings: Settings) -> images.Store:
    return images.Store(
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        max_bytes=settings.max_image_bytes,
        expires_seconds=settings.upload_expires_seconds,
    )


async def bucket(kit: kit_app.Kit, *, settings: Settings, store: images.Store) -> None:
    # only an S3-compatible endpoint (local runs) gets its bucket made; AWS's exists
    if settings.s3_endpoint_url:
        await store.ensure_bucket()


def subscriptions(kit: kit_app.Kit, *, store: images.Store) -> list[bus.Subscription[Any]]:
    async def on_user_created(event: events.UserCreated) -> None:
        await profiles.create(kit, user_id=event.user_id, user_name=event.user_name)

    async def on_user_deleted(event: events.UserDeleted) -> None:
        await profiles.forget(kit, store=store, user_id=event.user_id)

    async def on_block(event: blocking.Change) -> None:
        await blocking.apply(kit.database, event)

    return [
        bus.Subscription(event=events.UserCreated, handler=on_user_created),
        bus.Subscription(event=events.UserDeleted, handler=on_user_deleted),
        bus.Subscription(event=events.UserBlocked, handler=on_block),
        bus.Subscription(event=events.UserUnblocked, handler=on_block),
    ]
