"""Connect: friend recommendations, one person at a time, with why they match."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from rhime.web import gateway, music, people, visit
from rhime.web.visit import VisitDep

UserId = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{24}$")]
TOP_GENRES = 5
TOP_SHOWN = 5  # their top artists and tracks on the card


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/connect")
    async def connect(
        v: VisitDep, error: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        viewer = await v.current()
        if error and (viewer is None or not viewer.spotify):
            # The Spotify round trip failed: say so where the person can try again.
            raise visit.Redirect(f"{visit.CONNECT_SPOTIFY}?error={quote(error)}")
        await v.require()
        card = await next_card(v.api)
        if v.partial:
            return v.fragment("_rec_card.html", card=card)
        return v.page("connect.html", card=card)

    @r.post("/connect/{user_id}/follow")
    async def follow(v: VisitDep, user_id: UserId) -> Response:
        await v.require()
        # Followed people leave the stack by themselves (the API hides followees).
        await v.api.put(f"/api/graph/following/{user_id}")
        return await _after(v, followed=user_id)

    @r.post("/connect/{user_id}/dismiss")
    async def dismiss(v: VisitDep, user_id: UserId) -> Response:
        await v.require()
        await _dismiss(v.api, user_id)
        return await _after(v, followed=None)

    return r


async def _dismiss(api: gateway.Gateway, user_id: str) -> None:
    try:
        await api.post(f"/api/recommendations/{user_id}/dismiss")
    except gateway.ApiFailure as failure:
        if failure.status != 404:  # already gone: the goal is reached
            raise


async def _after(v: visit.Visit, *, followed: str | None) -> Response:
    if not v.partial:
        return visit.redirect(v.request, "/connect")
    return v.fragment("_rec_card.html", card=await next_card(v.api), followed=followed)


async def next_card(api: gateway.Gateway) -> dict[str, Any] | None:
    """The best recommendation with the person's profile, counts and top genres."""
    body = await api.get("/api/recommendations")
    recs = music.items(body, "recommendations")
    if not recs:
        return None
    rec = recs[0]
    user_id = str(rec.get("userId", ""))
    top = {"limit": TOP_SHOWN}
    profile, counts, posts, genres, artists, tracks = await gateway.gather(
        people.one(api, user_id),
        api.optional(f"/api/graph/users/{user_id}/counts", default={}),
        api.optional(f"/api/posts/users/{user_id}/count", default={}),
        api.optional(f"/api/spotify/users/{user_id}/top/genres", default={}),
        api.optional(f"/api/spotify/users/{user_id}/top/artists", default={}, params=top),
        api.optional(f"/api/spotify/users/{user_id}/top/tracks", default={}, params=top),
    )
    explanation = rec.get("explanation") or {}
    similarity = rec.get("similarity") or 0
    percent = rec.get("percent")
    if not isinstance(percent, int | float):
        percent = round(float(similarity) * 100)
    top_genres = [music.genre(g, i) for i, g in enumerate(music.items(genres, "genres"))]
    posted = posts.get("count") if isinstance(posts, dict) else None
    return {
        "user": profile,
        "percent": round(float(percent)),
        "counts": counts if isinstance(counts, dict) else {},
        "breakdown": explanation.get("breakdown") or {},
        "commonArtists": list(explanation.get("commonArtists") or []),
        "commonTracks": list(explanation.get("commonTracks") or []),
        "commonGenres": list(explanation.get("commonGenres") or []),
        "mutualFollows": int(explanation.get("mutualFollows") or 0),
        "topGenres": [name for name, _ in top_genres if name][:TOP_GENRES],
        "topArtists": _names(artists, "artists"),
        "topTracks": _names(tracks, "tracks"),
        "posts": posted if isinstance(posted, int) else None,
    }


def _names(body: Any, key: str) -> list[str]:
    found = (str(i.get("name") or "") for i in music.items(body, key) if isinstance(i, dict))
    return [name for name in found if name][:TOP_SHOWN]
