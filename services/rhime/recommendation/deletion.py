"""A person deleted their account: the recommendation components forget them (`user.deleted`).

Their copy of blocks, their pending initial fetch (its id and arguments name them), the
record of who was recommended to whom (and what it has yet to announce), their own
recommendations, the others' that name them and the explanations that mention them go. The
spotify service removes their tokens and taste on the same event. Each step is safe to
repeat, so a redelivery after a crash finishes the job.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from rhime import blocking
from rhime.recommendation import announce, jobs, store


async def forget(db: Any, rq: redis.Redis, *, user_id: str) -> None:
    await asyncio.to_thread(jobs.cancel_initial, rq, user_id=user_id)
    await blocking.forget(db, user_id=user_id)
    await announce.forget(db, user_id=user_id)
    recommendations = db[store.RECOMMENDATIONS]
    # gone with their taste too; this also covers a computation that ended after that
    await recommendations.delete_many({"userId": user_id})
    await recommendations.delete_many({"otherId": user_id})
    # others' explanations name up to a few of the people they follow who follow the other
    await recommendations.update_many(
        {"explanation.followedBy": user_id},
        {"$pull": {"explanation.followedBy": user_id}, "$inc": {"explanation.mutualFollows": -1}},
    )
