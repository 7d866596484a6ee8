"""The spotify service: connect Spotify (OAuth), the caller's access token, track search,
a user's top artists / tracks / genres, disconnect, and the gateway's connected check."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.music import store
from rhime.spotify import access, connection, deletion, internal, lookups, top
from rhime.spotify.settings import Settings


def create(settings: Settings) -> FastAPI:
    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def user_deleted(event: events.UserDeleted) -> None:
            await deletion.forget(kit, settings=settings, user_id=event.user_id)

        return [bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0)]

    indexes: Any = store.INDEXES
    return kit_app.create_app(
        settings,
        title="spotify",
        database=store.DATABASE,
        api_prefix="/api/spotify",
        routers=[
            connection.router(settings),
            lookups.router(settings),
            top.router(),
            internal.router(),
        ],
        indexes=indexes,
        outboxes=[store.TOKENS],
        resources=[access.CLIENT],
        subscriptions=subscriptions,
        description="Spotify OAuth, tokens, top artists, tracks and genres.",
    )
