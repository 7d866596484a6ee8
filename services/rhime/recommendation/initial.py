"""The first taste fetch after a Spotify connection, asked for by `user.authorized`.

Events come at least once, and a new consumer reads its stream from the start: a delivery
enqueues the fetch only while it is due, that is while the connection it names is the
current one and no taste has been fetched since it began. The job id covers the rest: one
pending fetch per user (`jobs.enqueue_initial`).
"""

from __future__ import annotations

import datetime
from typing import Any

from rhime.recommendation import store


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


async def due(db: Any, *, user_id: str, connection: int) -> bool:
    """Whether connection number `connection` (0: unknown) still awaits its first fetch."""
    token = await db[store.TOKENS].find_one(
        {"_id": user_id}, {"connected": 1, "connection": 1, "connectedAt": 1}
    )
    if token is None or not token.get("connected"):
        return False  # disconnected or deleted since: the job would keep nothing
    if connection and token.get("connection") != connection:
        return False  # a later connection has its own event
    taste = await db[store.TASTES].find_one({"_id": user_id}, {"fetchedAt": 1})
    began = token.get("connectedAt")
    if taste is None or began is None:
        return True
    return _aware(taste["fetchedAt"]) < _aware(began)
