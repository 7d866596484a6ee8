"""Home: the timeline with "load more", and the composer's track search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from rhime.web import gateway, music
from rhime.web.visit import VisitDep

SEARCH_LIMIT = 8


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/")
    async def home(
        v: VisitDep,
        before: Annotated[str | None, Query(max_length=64)] = None,
        q: Annotated[str, Query(max_length=100)] = "",
    ) -> Response:
        await v.require()
        query = q.strip()
        if v.partial == "track-results":
            results, error = await search(v.api, query)
            return v.fragment("_track_results.html", q=query, results=results, error=error)
        params = {"before": before} if before else None
        if v.partial == "feed-page":
            page = await v.api.get("/api/feed", params=params)
            return v.fragment("_feed_page.html", **timeline(page))
        (page, (results, error)) = await gateway.gather(
            v.api.get("/api/feed", params=params), search(v.api, query)
        )
        return v.page("home.html", q=query, results=results, search_error=error, **timeline(page))

    return r


def timeline(page: Any) -> dict[str, Any]:
    body = page if isinstance(page, dict) else {}
    return {"posts": list(body.get("posts") or []), "next": body.get("next")}


async def search(api: gateway.Gateway, query: str) -> tuple[list[dict[str, Any]], str | None]:
    """Tracks matching `query`, searched by the platform (Spotify tokens never reach the
    page). A failed search is shown in the composer rather than failing the whole page."""
    if not query:
        return [], None
    try:
        body = await api.get("/api/spotify/search", params={"q": query, "limit": SEARCH_LIMIT})
    except gateway.ApiFailure as failure:
        if failure.status == 401:
            raise
        return [], " ".join(failure.messages)
    return [music.track(t) for t in music.items(body, "tracks") if isinstance(t, dict)], None
