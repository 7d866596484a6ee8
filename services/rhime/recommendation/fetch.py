"""Fetch a user's top tracks and artists from Spotify, with genres back-filled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rhime.music import taste
from rhime.music.spotify.api import Call
from rhime.music.taste import TopItems

PAGE = 50
MAX_PAGES = 4  # Spotify serves at most a few pages of top items
ARTIST_BATCH = 50  # /v1/artists accepts up to 50 ids

Get = Callable[[Call], Awaitable[Any]]


def _first(kind: str, time_range: str) -> Call:
    if kind == "tracks":
        return lambda sp: sp.current_user_top_tracks(limit=PAGE, offset=0, time_range=time_range)
    return lambda sp: sp.current_user_top_artists(limit=PAGE, offset=0, time_range=time_range)


def _following(page: Any) -> Call:
    return lambda sp: sp.next(page)


def _artists(ids: list[str]) -> Call:
    return lambda sp: sp.artists(ids)


async def _paged(get: Get, kind: str, time_range: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page: Any = await get(_first(kind, time_range))
    for _ in range(MAX_PAGES):
        items.extend(item for item in page.get("items") or [] if item and item.get("id"))
        if not page.get("next"):
            break
        page = await get(_following(page))
    return items


async def top_items(get: Get, *, time_range: str) -> TopItems:
    """`get(call)` makes one Web API call with the user's token (`rhime.music.spotify.api.web`)."""
    raw_tracks = await _paged(get, "tracks", time_range)
    raw_artists = await _paged(get, "artists", time_range)
    names: dict[str, str] = {}
    tracks = []
    for item in raw_tracks:
        artist_ids = tuple(a["id"] for a in item.get("artists") or [] if a.get("id"))
        for artist in item.get("artists") or []:
            if artist.get("id"):
                names.setdefault(artist["id"], str(artist.get("name", "")))
        names[item["id"]] = str(item.get("name", ""))
        tracks.append(taste.TopTrack(id=item["id"], name=names[item["id"]], artist_ids=artist_ids))
    artists = []
    for item in raw_artists:
        names[item["id"]] = str(item.get("name", ""))
        artists.append(
            taste.TopArtist(
                id=item["id"], name=names[item["id"]], genres=tuple(item.get("genres") or ())
            )
        )
    # artists met only on tracks carry no genres: ask for them in batches
    known = {a.id for a in artists}
    missing = sorted({a for t in tracks for a in t.artist_ids} - known)
    genres_by_artist: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(missing), ARTIST_BATCH):
        body = await get(_artists(missing[start : start + ARTIST_BATCH]))
        for artist in body.get("artists") or []:
            if artist and artist.get("id"):
                genres_by_artist[artist["id"]] = tuple(artist.get("genres") or ())
    return TopItems(tracks=tracks, artists=artists, genres_by_artist=genres_by_artist, names=names)
