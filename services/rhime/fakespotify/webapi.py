"""Spotify's Web API under ``/v1``: profile, top items, artists, tracks and search, behind
a bearer token the accounts service issued."""

# No ``from __future__ import annotations``: FastAPI must evaluate the route signatures,
# whose Annotated dependencies are closures over one app's state.

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request

from rhime.fakespotify import faults
from rhime.fakespotify.errors import SpotifyError
from rhime.fakespotify.settings import FakeSpotifySettings
from rhime.fakespotify.shapes import Shapes, paging
from rhime.fakespotify.state import Access, FakeState
from rhime.music import population as pop

MAX_LIMIT = 50
MAX_IDS = 50

Bearer = Callable[..., Awaitable[Access]]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]
TimeRangeQuery = Annotated[Literal["short_term", "medium_term", "long_term"], Query()]


def router(
    *,
    settings: FakeSpotifySettings,
    spec: pop.PopulationSpec,
    state: FakeState,
    clock: Callable[[], float],
) -> APIRouter:
    routes = APIRouter(prefix="/v1", dependencies=[Depends(faults.injector(state))])
    bearer = _bearer(state=state, clock=clock)
    shapes = Shapes(pop.catalogue(spec), public_url=settings.public_url)
    _add_profile(routes, bearer=bearer, spec=spec, shapes=shapes)
    _add_catalogue(routes, bearer=bearer, shapes=shapes)
    _add_search(routes, bearer=bearer, shapes=shapes)
    return routes


def _bearer(*, state: FakeState, clock: Callable[[], float]) -> Bearer:
    async def bearer(authorization: Annotated[str | None, Header()] = None) -> Access:
        if not authorization:
            raise SpotifyError(401, "No token provided")
        if not authorization.startswith("Bearer "):
            raise SpotifyError(400, "Only valid bearer authentication supported")
        found = state.access.get(authorization.removeprefix("Bearer "))
        if found is None:
            raise SpotifyError(401, "Invalid access token")
        if found.expires_at <= clock():
            raise SpotifyError(401, "The access token expired")
        return found

    return bearer


def _add_profile(
    routes: APIRouter, *, bearer: Bearer, spec: pop.PopulationSpec, shapes: Shapes
) -> None:
    """The token's user and their top artists or tracks."""
    Auth = Annotated[Access, Depends(bearer)]
    cat = shapes.catalogue

    @routes.get("/me")
    async def me(request: Request, access: Auth) -> dict[str, Any]:
        return shapes.user(request, pop.user_taste(spec, access.user))

    @routes.get("/me/top/{kind}")
    async def top(
        request: Request,
        access: Auth,
        kind: Literal["artists", "tracks"],
        limit: Limit = 20,
        offset: Offset = 0,
        time_range: TimeRangeQuery = "medium_term",
    ) -> dict[str, Any]:
        if "user-top-read" not in access.scope.split():
            raise SpotifyError(403, "Insufficient client scope")
        taste = pop.user_taste(spec, access.user, time_range=time_range)
        if kind == "artists":
            ids = [a.id for a in taste.artists]
            items = [shapes.artist(request, cat.artists[i]) for i in ids[offset : offset + limit]]
        else:
            ids = [t.id for t in taste.tracks]
            items = [shapes.track(request, cat.tracks[i]) for i in ids[offset : offset + limit]]
        return paging(request, items, len(ids), limit, offset)


def _add_catalogue(routes: APIRouter, *, bearer: Bearer, shapes: Shapes) -> None:
    """Artists and tracks by id, one or several at once."""
    Auth = Annotated[Access, Depends(bearer)]
    cat = shapes.catalogue

    @routes.get("/artists")
    async def artists(request: Request, _access: Auth, ids: str) -> dict[str, Any]:
        found = (cat.artists.get(i) for i in _ids(ids))
        return {"artists": [shapes.artist(request, a) if a else None for a in found]}

    @routes.get("/artists/{artist_id}")
    async def artist(request: Request, _access: Auth, artist_id: str) -> dict[str, Any]:
        found = cat.artists.get(artist_id)
        if found is None:
            raise SpotifyError(404, "Resource not found")
        return shapes.artist(request, found)

    @routes.get("/tracks")
    async def tracks(request: Request, _access: Auth, ids: str) -> dict[str, Any]:
        found = (cat.tracks.get(i) for i in _ids(ids))
        return {"tracks": [shapes.track(request, t) if t else None for t in found]}

    @routes.get("/tracks/{track_id}")
    async def track(request: Request, _access: Auth, track_id: str) -> dict[str, Any]:
        found = cat.tracks.get(track_id)
        if found is None:
            raise SpotifyError(404, "Resource not found")
        return shapes.track(request, found)


def _ids(ids: str) -> list[str]:
    wanted = [i for i in ids.split(",") if i]
    if not wanted:
        raise SpotifyError(400, "invalid id")
    if len(wanted) > MAX_IDS:
        raise SpotifyError(400, "Too many ids requested")
    return wanted


def _add_search(routes: APIRouter, *, bearer: Bearer, shapes: Shapes) -> None:
    """Search by words, for tracks, artists or both, a page of each."""
    Auth = Annotated[Access, Depends(bearer)]
    cat = shapes.catalogue

    @routes.get("/search")
    async def search(
        request: Request,
        _access: Auth,
        q: str = "",
        type: str = "",
        limit: Limit = 20,
        offset: Annotated[int, Query(ge=0, le=1000)] = 0,
        market: str | None = None,
    ) -> dict[str, Any]:
        if not q.strip():
            raise SpotifyError(400, "No search query")
        kinds = [k for k in type.split(",") if k]
        if not kinds or any(k not in ("track", "artist") for k in kinds):
            raise SpotifyError(400, "Unsupported type")
        words = q.lower().split()
        body: dict[str, Any] = {}
        if "track" in kinds:
            matches = _tracks_matching(cat, words)
            page = [shapes.track(request, t) for t in matches[offset : offset + limit]]
            body["tracks"] = paging(request, page, len(matches), limit, offset)
        if "artist" in kinds:
            found = _artists_matching(cat, words)
            page = [shapes.artist(request, a) for a in found[offset : offset + limit]]
            body["artists"] = paging(request, page, len(found), limit, offset)
        return body


def _tracks_matching(cat: pop.Catalogue, words: Sequence[str]) -> list[pop.Track]:
    """Tracks whose name or artists' names hold every word, most popular first."""
    matches = [
        t
        for t in cat.tracks.values()
        if _matches(words, t.name, (cat.artists[a].name for a in t.artist_ids))
    ]
    matches.sort(key=lambda t: (-t.popularity, t.id))
    return matches


def _artists_matching(cat: pop.Catalogue, words: Sequence[str]) -> list[pop.Artist]:
    """Artists whose name holds every word, most popular first."""
    found = [a for a in cat.artists.values() if _matches(words, a.name, ())]
    found.sort(key=lambda a: (-a.popularity, a.id))
    return found


def _matches(words: Sequence[str], name: str, others: Any) -> bool:
    text = " ".join([name, *others]).lower()
    return all(word in text for word in words)
