"""The post component: share a track with a caption, read, list, count and delete posts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Response
from pydantic import Field

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import bus, identity
from rhime.kit.settings import Settings as KitSettings
from rhime.post import models, posts, tracks


class Settings(KitSettings):
    page_size: int = Field(
        default=10, description="posts per page of a user's posts when no `limit` is given"
    )


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/posts", tags=["posts"])
    internal = APIRouter(prefix="/internal/posts", tags=["internal"])

    @router.post("", status_code=201)
    async def create_post(
        body: models.NewPost, user: identity.User, kit: kit_app.KitDep
    ) -> dict[str, models.PostOut]:
        found = await tracks.lookup(kit, poster=user, track_id=body.trackId)
        return {"post": await posts.create(kit, user_id=user.user_id, post=body, found=found)}

    @router.get("/users/{user_id}")
    async def list_posts(
        user_id: str,
        _: identity.Caller,
        kit: kit_app.KitDep,
        before: Annotated[str | None, Query(max_length=24)] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = settings.page_size,
    ) -> models.PostPage:
        user_id = posts.object_id(user_id, what="userId")
        anchor = posts.object_id(before, what="before") if before is not None else None
        return await posts.of_user(kit, user_id=user_id, before=anchor, limit=limit)

    @router.get("/users/{user_id}/count")
    async def count_posts(user_id: str, _: identity.Caller, kit: kit_app.KitDep) -> models.Count:
        user_id = posts.object_id(user_id, what="userId")
        return models.Count(count=await posts.count(kit, user_id=user_id))

    @router.get("/{post_id}")
    async def get_post(
        post_id: str, _: identity.Caller, kit: kit_app.KitDep
    ) -> dict[str, models.PostOut]:
        return {"post": await posts.get(kit, post_id=posts.object_id(post_id, what="postId"))}

    @router.delete("/{post_id}", status_code=204)
    async def delete_post(post_id: str, user: identity.User, kit: kit_app.KitDep) -> Response:
        post_id = posts.object_id(post_id, what="postId")
        await posts.delete(kit, user_id=user.user_id, post_id=post_id)
        return Response(status_code=204)

    @internal.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[models.PostOut]]:
        """The user's posts, for their data export (components only)."""
        return {"posts": await posts.export(kit, user_id=user_id)}

    @internal.post("/batch")
    async def batch(body: models.Ids, _: identity.Service, kit: kit_app.KitDep) -> models.PostsById:
        return models.PostsById(posts=await posts.get_many(kit, post_ids=body.ids))

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def on_user_deleted(event: events.UserDeleted) -> None:
            await posts.delete_all(kit, user_id=event.user_id)

        # a prolific person's posts take a while; what a timeout interrupts, a redelivery
        # finishes
        return [bus.Subscription(event=events.UserDeleted, handler=on_user_deleted, ack_wait=90.0)]

    return kit_app.create_app(
        settings,
        title="post",
        database="post",
        api_prefix="/api/posts",
        routers=[router, internal],
        indexes=posts.INDEXES,
        outboxes=[posts.COLLECTION],
        subscriptions=subscriptions,
    )
