"""My notifications: a page of them, the unread count (cheap to poll), marking them read."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rhime.kit import app as kit_app
from rhime.kit import identity, ids
from rhime.notification import inbox


class ReadUpTo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upTo: str | None = Field(default=None, max_length=24)


Before = Annotated[str | None, Query(max_length=24)]
Limit = Annotated[int, Query(ge=1, le=50)]


def etag(count: int, newest: str) -> str:
    return f'"{count}-{newest}"'


def router(*, page_size: int) -> APIRouter:
    routes = APIRouter(prefix="/api/notifications", tags=["notifications"])

    @routes.get("")
    async def page(
        user: identity.User,
        kit: kit_app.KitDep,
        before: Before = None,
        limit: Limit = page_size,
    ) -> dict[str, Any]:
        """My notifications, newest first (a group rises when someone new joins it)."""
        anchor = None if before is None else ids.object_id(before, what="before")
        return await inbox.page(kit, recipient=user.user_id, before=anchor, limit=limit)

    @routes.get("/unread-count")
    async def unread_count(
        request: Request, response: Response, user: identity.User, kit: kit_app.KitDep
    ) -> Any:
        """How many notifications are unread. Answers 304 to a matching `If-None-Match`, so
        pages can poll it for the price of a header."""
        count, newest = await inbox.unread(kit, recipient=user.user_id)
        tag = etag(count, newest)
        headers = {"etag": tag, "cache-control": "private, no-cache"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return {"count": count}

    @routes.post("/read")
    async def read(body: ReadUpTo, user: identity.User, kit: kit_app.KitDep) -> dict[str, Any]:
        """Mark my notifications read up to `upTo` (a notification id), or all of them."""
        up_to = None if body.upTo is None else ids.object_id(body.upTo, what="upTo")
        await inbox.mark_read(kit, recipient=user.user_id, up_to=up_to)
        count, _ = await inbox.unread(kit, recipient=user.user_id)
        return {"count": count}

    return routes
