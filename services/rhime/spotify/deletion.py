"""A person deleted their account: the spotify service forgets them (`user.deleted`).

Their Spotify tokens (no `user.disconnected`: the account and its gate are gone already),
their token refresh lock, and their taste with its candidate-index postings and their own
recommendations (`tastes.forget`) go. What the recommendation components keep of them
(others' recommendations naming them, announcements, the initial fetch job) they forget on
the same event. Each step is safe to repeat, so a redelivery after a crash finishes the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rhime.music import store, tastes
from rhime.spotify.settings import Settings

if TYPE_CHECKING:
    from rhime.kit.kit import Kit


async def forget(kit: Kit, *, settings: Settings, user_id: str) -> None:
    db = kit.database
    await kit.redis.delete(settings.key("spotify-refresh", user_id))
    await db[store.TOKENS].delete_one({"_id": user_id})
    await tastes.forget(db, user_id=user_id)
