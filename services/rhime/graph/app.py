"""user-graph: `/api/graph` — follow, unfollow, lists, counts and relationships."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from rhime import events
from rhime.graph import block_routes, blocks, edges, follow_routes, follows, internal, list_routes
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.settings import Settings as KitSettings

PREFIX = "/api/graph"


class Settings(KitSettings):
    pass


def create(settings: Settings) -> FastAPI:
    return kit_app.create_app(
        settings,
        title="user-graph",
        description="Follow and unfollow; follower and following lists, counts, relationships.",
        database="graph",
        api_prefix=PREFIX,
        routers=[
            follow_routes.router(),
            block_routes.router(),
            list_routes.router(),
            internal.router(),
        ],
        indexes={**edges.INDEXES, **blocks.INDEXES},
        outboxes=[edges.EDGES, blocks.BLOCKS],
        subscriptions=subscriptions,
        tasks=[follows.settle_forever],
    )


def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
    async def on_user_created(event: events.UserCreated) -> None:
        await edges.add_user(kit.database, user_id=event.user_id, user_name=event.user_name)

    async def on_user_deleted(event: events.UserDeleted) -> None:
        await follows.forget_all(kit, user_id=event.user_id)

    async def on_user_blocked(event: events.UserBlocked) -> None:
        await follows.end_follows(kit, a=event.blocker_id, b=event.blocked_id)

    return [
        bus.Subscription(event=events.UserCreated, handler=on_user_created),
        # many follows take a while; what a timeout interrupts, a redelivery finishes
        bus.Subscription(event=events.UserDeleted, handler=on_user_deleted, ack_wait=90.0),
        bus.Subscription(event=events.UserBlocked, handler=on_user_blocked),
    ]
