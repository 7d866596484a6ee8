"""Telling people of recommendations new to them: the weekly refresh announces each person
who enters someone's top recommendations for the first time, once per pair ever.

The memory and the outbox are one document per pair (`announced`, `_id` "a:b"): its insert is
the check (a pair seen before collides on `_id`), and with a `week` it stages the pair's
`user.recommended` in the same write. The worker has no NATS connection: the recommendation
component relays what is staged (the kit's outbox relay), so a crash loses nothing and a
repeated batch announces nothing twice. The first computation after connecting Spotify
records its top silently: those people are on the Connect page already, not news.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

from rhime import blocking, events
from rhime.kit import outbox
from rhime.recommendation import store

TOP = 10  # the first page of recommendations: the ones a person sees


async def remember(db: Any, *, user_id: str, others: Sequence[str], week: str | None) -> list[str]:
    """Record `others` (best first) as recommended to `user_id`; with `week`, each new one
    gets its `user.recommended`. Never for a pair of whom one blocks the other. Returns the
    new ones."""
    hidden = await blocking.hidden(db, user_id=user_id)
    new = []
    for other in others[:TOP]:
        if other == user_id or other in hidden:
            continue
        doc: dict[str, Any] = {
            "_id": store.recommendation_id(user_id, other),
            "userId": user_id,
            "otherId": other,
            "at": datetime.datetime.now(datetime.UTC),
        }
        if week is not None:
            event = events.UserRecommended(
                id=f"user.recommended:{user_id}:{other}", user_id=user_id, other_id=other, week=week
            )
            doc[outbox.FIELD] = outbox.staged(event)
        try:
            await db[store.ANNOUNCED].insert_one(doc)
        except DuplicateKeyError:
            continue  # recommended to them before
        new.append(other)
    return new


async def forget(db: Any, *, user_id: str) -> None:
    """The person deleted their account: the pairs naming them go (staged or not: whoever
    would be told of them is told nothing now)."""
    await db[store.ANNOUNCED].delete_many({"userId": user_id})
    await db[store.ANNOUNCED].delete_many({"otherId": user_id})
