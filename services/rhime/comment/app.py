"""The comment component: comment on existing posts, list newest first, count, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Response
from pydantic import Field

from rhime import blocking, events
from rhime.comment import comments, models, posts
from rhime.kit import app as kit_app
from rhime.kit import bus, identity
from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    page_size: int = Field(default=10, description="comments per page of a post's comments")


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/comments", tags=["comments"])
    internal = APIRouter(prefix="/internal/comments", tags=["internal"])

    @router.post("/posts/{post_id}", status_code=201)
    async def create_comment(
        post_id: str, body: models.NewComment, user: identity.User, kit: kit_app.KitDep
    ) -> dict[str, models.CommentOut]:
        post_id = comments.object_id(post_id, what="postId")
        comment = await comments.create(kit, user_id=user.user_id, post_id=post_id, text=body.text)
        return {"comment": comment}

    @router.get("/posts/{post_id}")
    async def list_comments(
        post_id: str,
        _: identity.Caller,
        kit: kit_app.KitDep,
        before: Annotated[str | None, Query(max_length=24)] = None,
    ) -> models.CommentPage:
        post_id = comments.object_id(post_id, what="postId")
        anchor = comments.object_id(before, what="before") if before is not None else None
        return await comments.of_post(kit, post_id=post_id, before=anchor, limit=settings.page_size)

    @router.get("/posts/{post_id}/count")
    async def count_comments(post_id: str, _: identity.Caller, kit: kit_app.KitDep) -> models.Count:
        post_id = comments.object_id(post_id, what="postId")
        return models.Count(count=await comments.count(kit, post_id=post_id))

    @router.delete("/{comment_id}", status_code=204)
    async def delete_comment(comment_id: str, user: identity.User, kit: kit_app.KitDep) -> Response:
        comment_id = comments.object_id(comment_id, what="commentId")
        await comments.delete(kit, user_id=user.user_id, comment_id=comment_id)
        return Response(status_code=204)

    @internal.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[models.CommentOut]]:
        """The user's comments, for their data export (components only)."""
        return {"comments": await comments.export(kit, user_id=user_id)}

    @internal.post("/counts")
    async def batch_counts(
        body: models.Ids, _: identity.Service, kit: kit_app.KitDep
    ) -> models.Counts:
        return models.Counts(counts=await comments.counts(kit, post_ids=body.ids))

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def created(event: events.PostCreated) -> None:
            await posts.on_created(kit, event)

        async def deleted(event: events.PostDeleted) -> None:
            await posts.on_deleted(kit, event)

        async def user_deleted(event: events.UserDeleted) -> None:
            await comments.delete_all(kit, user_id=event.user_id)
            await blocking.forget(kit.database, user_id=event.user_id)

        async def block_changed(event: blocking.Change) -> None:
            await blocking.apply(kit.database, event)

        return [
            bus.Subscription(event=events.PostCreated, handler=created),
            bus.Subscription(event=events.PostDeleted, handler=deleted),
            # many comments take a while; what a timeout interrupts, a redelivery finishes
            bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
            bus.Subscription(event=events.UserBlocked, handler=block_changed),
            bus.Subscription(event=events.UserUnblocked, handler=block_changed),
        ]

    return kit_app.create_app(
        settings,
        title="comment",
        database="comment",
        api_prefix="/api/comments",
        routers=[router, internal],
        indexes=comments.INDEXES,
        outboxes=[comments.COLLECTION],
        subscriptions=subscriptions,
    )
