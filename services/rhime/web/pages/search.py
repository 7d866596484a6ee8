"""Finding people: the header's search box lands here, a page of people by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from rhime.web import gateway
from rhime.web.visit import VisitDep


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/search")
    async def search(
        v: VisitDep,
        q: Annotated[str, Query(max_length=200)] = "",
        after: Annotated[str | None, Query(max_length=400)] = None,
    ) -> Response:
        await v.require()
        if not q.strip():
            return v.page("search.html", people_q="", people=[], next=None, messages=[])
        params = {"q": q, **({"after": after} if after else {})}
        try:
            body = await v.api.get("/api/users/search", params=params)
        except gateway.ApiFailure as failure:
            if failure.status >= 500 or failure.status in (401, 429):
                raise
            messages = [e["msg"] for e in failure.errors]
            return v.page(
                "search.html",
                status=failure.status,
                people_q=q,
                people=[],
                next=None,
                messages=messages,
            )
        found = body.get("users") if isinstance(body, dict) else None
        return v.page(
            "search.html",
            people_q=q,
            people=[p for p in found or [] if isinstance(p, dict)],
            next=body.get("next") if isinstance(body, dict) else None,
            after=after,
            messages=[],
        )

    return r
