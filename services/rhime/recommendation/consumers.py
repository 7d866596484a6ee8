"""The events the recommendation component consumes: blocks (its copy, and what was computed
of the pair), a new Spotify connection (its first taste fetch) and a deleted account."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.kit import Resource
from rhime.recommendation import deletion, initial, jobs, store
from rhime.recommendation.settings import Settings


async def blocked(db: Any, event: blocking.Change) -> None:
    """Keep the copy of blocks that computations exclude; a block also removes what was
    computed of the pair, both ways (dismissals too: lifting the block starts afresh)."""
    await blocking.apply(db, event)
    if isinstance(event, events.UserBlocked):
        a, b = event.blocker_id, event.blocked_id
        ids_ = [store.recommendation_id(a, b), store.recommendation_id(b, a)]
        await db[store.RECOMMENDATIONS].delete_many({"_id": {"$in": ids_}})


@contextlib.asynccontextmanager
async def _open_rq(kit: kit_app.Kit) -> AsyncIterator[redis.Redis]:
    # no I/O until the first command
    conn = jobs.connection(kit.settings)
    try:
        yield conn
    finally:
        conn.close()


RQ = Resource("rq", open=_open_rq)  # the job queue's connection, as rq needs it


def subscriptions(kit: kit_app.Kit, *, settings: Settings) -> list[bus.Subscription[Any]]:
    async def block_changed(event: blocking.Change) -> None:
        await blocked(kit.database, event)

    async def user_authorized(event: events.UserAuthorized) -> None:
        # a new connection: fetch the taste now rather than at the weekly refresh
        if await initial.due(kit.database, user_id=event.user_id, connection=event.connection):
            await asyncio.to_thread(
                jobs.enqueue_initial, kit.resource(RQ), settings=settings, user_id=event.user_id
            )

    async def user_deleted(event: events.UserDeleted) -> None:
        await deletion.forget(kit.database, kit.resource(RQ), user_id=event.user_id)

    return [
        bus.Subscription(event=events.UserAuthorized, handler=user_authorized),
        bus.Subscription(event=events.UserBlocked, handler=block_changed),
        bus.Subscription(event=events.UserUnblocked, handler=block_changed),
        bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
    ]
