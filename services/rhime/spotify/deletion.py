"""A person deleted their account: the music context forgets them (`user.deleted`).

Their Spotify tokens (no `user.disconnected`: the account and its gate are gone already),
taste, candidate-index postings and recommendations go, and so do the recommendations of
others that name them, the record of who was recommended to whom (and what it has yet to
announce), and their initial-fetch job (its id and arguments name them). Each
step is safe to repeat, so a redelivery after a crash finishes the job.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rhime.music import store, tastes
from rhime.recommendation import announce, jobs
from rhime.spotify.settings import Settings

if TYPE_CHECKING:
    from rhime.kit.app import Kit


async def forget(kit: Kit, *, settings: Settings, user_id: str) -> None:
    db = kit.database
    await asyncio.to_thread(jobs.cancel_initial, kit.extras["rq"], user_id=user_id)
    await kit.redis.delete(settings.key("spotify-refresh", user_id))
    await db[store.TOKENS].delete_one({"_id": user_id})
    await tastes.forget(db, user_id=user_id)
    await announce.forget(db, user_id=user_id)
    recommendations = db[store.RECOMMENDATIONS]
    await recommendations.delete_many({"otherId": user_id})
    # others' explanations name up to a few of the people they follow who follow the other
    await recommendations.update_many(
        {"explanation.followedBy": user_id},
        {"$pull": {"explanation.followedBy": user_id}, "$inc": {"explanation.mutualFollows": -1}},
    )
