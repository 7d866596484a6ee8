"""The track a post shares, as Spotify describes it: looked up through the spotify service
with the poster's own connection, so a post's name, artists, link and cover never come from
the client (a client could otherwise point "Open in Spotify" anywhere, or load covers from a
tracking host)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rhime.kit import calls, errors, identity
from rhime.post import models

if TYPE_CHECKING:
    from rhime.kit.kit import Kit


async def lookup(kit: Kit, *, poster: identity.Identity, track_id: str) -> models.Track:
    try:
        body = await calls.call(
            kit, "spotify", "GET", f"/api/spotify/tracks/{track_id}", as_user=poster
        )
    except errors.ApiError as exc:
        if exc.status == 404 and any(i.get("field") == "trackId" for i in exc.items):
            raise errors.bad_request("No such track exists on Spotify.", field="trackId") from None
        raise
    try:
        return models.Track.model_validate(body)
    except ValueError:
        # Spotify answered something a post cannot show
        raise errors.ApiError(502, errors.message(502)) from None
