"""Spotify's catalogue looked up with the caller's token: track search, one track, artists."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from rhime.kit import app as kit_app
from rhime.kit import errors, identity
from rhime.music.spotify import api
from rhime.spotify import access, artists, search
from rhime.spotify.settings import Settings


class SearchOut(BaseModel):
    tracks: list[search.Track]


class ArtistsOut(BaseModel):
    artists: list[artists.Artist]


def artist_ids(ids: str) -> list[str]:
    """The distinct ids asked for, in order; 400 for too few, too many or malformed ones."""
    wanted = list(dict.fromkeys(i for i in ids.split(",") if i))
    if not 1 <= len(wanted) <= artists.MAX_IDS:
        raise errors.bad_request(f"Give 1 to {artists.MAX_IDS} ids.", field="ids")
    if not all(re.fullmatch(search.TRACK_ID, i) for i in wanted):
        raise errors.bad_request("Invalid ids", field="ids")
    return wanted


async def one_track(
    kit: kit_app.Kit, *, settings: Settings, user_id: str, track_id: str
) -> search.Track:
    value, _ = await access.token(kit, settings=settings, user_id=user_id)
    try:
        body = await api.web(
            access.client(kit), settings=settings, token=value, call=lambda sp: sp.track(track_id)
        )
    except api.SpotifyError as exc:
        if exc.status in (400, 404):
            missing = errors.ApiError(404, "No such track exists on Spotify.", field="trackId")
            raise missing from None
        raise access.upstream(exc) from None
    if not isinstance(body, dict) or body.get("id") != track_id:
        raise errors.ApiError(502, errors.message(502))
    return search.compact(body)


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/api/spotify", tags=["spotify"])

    async def web(kit: kit_app.Kit, user_id: str, call: api.Call) -> Any:
        value, _ = await access.token(kit, settings=settings, user_id=user_id)
        return await access.web(kit, settings=settings, token=value, call=call)

    @routes.get("/search")
    async def search_tracks(
        user: identity.User,
        kit: kit_app.KitDep,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> SearchOut:
        if not q.strip():
            raise errors.bad_request("The search query is empty.", field="q")
        body = await web(kit, user.user_id, lambda sp: sp.search(q, limit=limit, type="track"))
        return SearchOut(tracks=search.tracks(body))

    @routes.get("/tracks/{trackId}")
    async def track(
        track_id: Annotated[str, Path(alias="trackId", pattern=search.TRACK_ID)],
        user: identity.User,
        kit: kit_app.KitDep,
    ) -> search.Track:
        """One track as Spotify describes it, looked up with the caller's token: the post
        service takes a track's name, artists, link and cover from here, never from clients."""
        return await one_track(kit, settings=settings, user_id=user.user_id, track_id=track_id)

    @routes.get("/artists")
    async def artist_details(
        user: identity.User,
        kit: kit_app.KitDep,
        ids: Annotated[str, Query(min_length=1, max_length=3300)],
    ) -> ArtistsOut:
        """Artists' names, pictures and links, in the order asked (unknown ids left out)."""

        async def fetch(missing: list[str]) -> Any:
            return await web(kit, user.user_id, lambda sp: sp.artists(missing))

        found = await artists.lookup(
            kit.redis,
            key_of=lambda artist_id: settings.key("spotify-artist", artist_id),
            wanted=artist_ids(ids),
            fetch=fetch,
        )
        return ArtistsOut(artists=found)

    return routes
