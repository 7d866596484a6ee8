"""The notification component: likes, comments and follows others did to me and people new
among my recommendations, grouped, with an unread count cheap enough for every open page to
ask often."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus, identity, ids
from rhime.kit.settings import Settings as KitSettings
from rhime.notification import causes, forgotten, groups, inbox, items


class Settings(KitSettings):
    keep: int = Field(
        default=200, ge=10, le=2000, description="notifications kept per person (the newest)"
    )
    page_size: int = Field(
        default=20, ge=1, le=50, description="notifications per page when no `limit` is given"
    )


class ReadUpTo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upTo: str | None = Field(default=None, max_length=24)


Before = Annotated[str | None, Query(max_length=24)]
Limit = Annotated[int, Query(ge=1, le=50)]


def etag(count: int, newest: str) -> str:
    return f'"{count}-{newest}"'


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/notifications", tags=["notifications"])
    limits = causes.Limits(keep=settings.keep)

    @router.get("")
    async def page(
        user: identity.User,
        kit: kit_app.KitDep,
        before: Before = None,
        limit: Limit = settings.page_size,
    ) -> dict[str, Any]:
        """My notifications, newest first (a group rises when someone new joins it)."""
        anchor = None if before is None else ids.object_id(before, what="before")
        return await inbox.page(kit, recipient=user.user_id, before=anchor, limit=limit)

    @router.get("/unread-count")
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

    @router.post("/read")
    async def read(body: ReadUpTo, user: identity.User, kit: kit_app.KitDep) -> dict[str, Any]:
        """Mark my notifications read up to `upTo` (a notification id), or all of them."""
        up_to = None if body.upTo is None else ids.object_id(body.upTo, what="upTo")
        await inbox.mark_read(kit, recipient=user.user_id, up_to=up_to)
        count, _ = await inbox.unread(kit, recipient=user.user_id)
        return {"count": count}

    internal = APIRouter(prefix="/internal/notifications", tags=["internal"])

    @internal.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """Every notification the user has, for their data export (components only)."""
        body = await inbox.page(kit, recipient=user_id, before=None, limit=settings.keep)
        return {"notifications": body["notifications"]}

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        # each handler removes again what it wrote of someone who deleted their account
        async def recheck(*people: str) -> None:
            await forgotten.recheck(kit, people=people, limits=limits)

        async def post_created(event: events.PostCreated) -> None:
            await causes.post_created(kit, event)
            await recheck(event.user_id)

        async def post_deleted(event: events.PostDeleted) -> None:
            await causes.post_deleted(kit, event, limits=limits)
            await recheck(event.user_id)

        async def comment_created(event: events.CommentCreated) -> None:
            await causes.comment_created(kit, event, limits=limits)
            await recheck(event.user_id)

        async def comment_deleted(event: events.CommentDeleted) -> None:
            await causes.comment_deleted(kit, event, limits=limits)
            await recheck(event.user_id)

        async def like_toggled(event: events.LikeToggled) -> None:
            await causes.like_toggled(kit, event, limits=limits)
            await recheck(event.user_id)

        async def followed(event: events.UserFollowed) -> None:
            await causes.follow_changed(kit, event, limits=limits)
            await recheck(event.follower_id, event.followee_id)

        async def unfollowed(event: events.UserUnfollowed) -> None:
            await causes.follow_changed(kit, event, limits=limits)
            await recheck(event.follower_id, event.followee_id)

        async def recommended(event: events.UserRecommended) -> None:
            await causes.recommended(kit, event, limits=limits)
            await recheck(event.user_id, event.other_id)

        async def block_changed(event: blocking.Change) -> None:
            await causes.block_changed(kit, event, limits=limits)

        async def user_deleted(event: events.UserDeleted) -> None:
            await forgotten.forget(kit, user_id=event.user_id, limits=limits)
            await blocking.forget(kit.database, user_id=event.user_id)

        return [
            bus.Subscription(event=events.PostCreated, handler=post_created),
            bus.Subscription(event=events.PostDeleted, handler=post_deleted),
            bus.Subscription(event=events.CommentCreated, handler=comment_created),
            bus.Subscription(event=events.CommentDeleted, handler=comment_deleted),
            bus.Subscription(event=events.LikeToggled, handler=like_toggled),
            bus.Subscription(event=events.UserFollowed, handler=followed),
            bus.Subscription(event=events.UserUnfollowed, handler=unfollowed),
            bus.Subscription(event=events.UserRecommended, handler=recommended),
            bus.Subscription(event=events.UserBlocked, handler=block_changed),
            bus.Subscription(event=events.UserUnblocked, handler=block_changed),
            # many groups take a while; what a timeout interrupts, a redelivery finishes
            bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
        ]

    return kit_app.create_app(
        settings,
        title="notification",
        database="notification",
        redis=False,
        api_prefix="/api/notifications",
        routers=[router, internal],
        indexes={
            **items.INDEXES,
            groups.COLLECTION: groups.INDEXES,
            causes.FOLLOWS: causes.FOLLOWS_INDEXES,
        },
        subscriptions=subscriptions,
    )
