"""Notifications: what others did to my posts, comments and me; opening the page reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from rhime.web import notices, people
from rhime.web.visit import VisitDep


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/notifications")
    async def notifications(
        v: VisitDep, before: Annotated[str | None, Query(max_length=64)] = None
    ) -> Response:
        await v.require()
        page = await v.api.get("/api/notifications", params={"before": before} if before else None)
        body = page if isinstance(page, dict) else {}
        found = [n for n in body.get("notifications") or [] if isinstance(n, dict)]
        names = await people.many(v.api, [a for n in found for a in n.get("actors", [])[:2]])
        if found and not before:
            # Seen now: the bell clears. The list still marks what was new on this visit.
            await v.api.post("/api/notifications/read", json={"upTo": found[0]["notificationId"]})
        return v.page(
            "notifications.html",
            notices=[notices.notice(n, names) for n in found],
            next=body.get("next"),
        )

    return r
