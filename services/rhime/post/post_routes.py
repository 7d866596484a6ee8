"""Posts: share a track with a caption, read one, list and count a person's, delete your own."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Annotated

from fastapi import APIRouter, Query, Response

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.post import models, posts, tracks


def router(*, page_size: int) -> APIRouter:
    routes = APIRouter(prefix="/api/posts", tags=["posts"])

    @routes.post("", status_code=201)
    async def create_post(
        body: models.NewPost, user: identity.User, kit: kit_app.KitDep
    ) -> dict[str, models.PostOut]:
        found = await tracks.lookup(kit, poster=user, track_id=body.trackId)
        return {"post": await posts.create(kit, user_id=user.user_id, post=body, found=found)}

    @routes.get("/users/{user_id}")
    async def list_posts(
        user_id: str,
        _: identity.Caller,
        kit: kit_app.KitDep,
        before: Annotated[str | None, Query(max_length=24)] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = page_size,
    ) -> models.PostPage:
        user_id = posts.object_id(user_id, what="userId")
        anchor = posts.object_id(before, what="before") if before is not None else None
        return await posts.of_user(kit, user_id=user_id, before=anchor, limit=limit)

    @routes.get("/users/{user_id}/count")
    async def count_posts(user_id: str, _: identity.Caller, kit: kit_app.KitDep) -> models.Count:
        user_id = posts.object_id(user_id, what="userId")
        return models.Count(count=await posts.count(kit, user_id=user_id))

    @routes.get("/{post_id}")
    async def get_post(
        post_id: str, _: identity.Caller, kit: kit_app.KitDep
    ) -> dict[str, models.PostOut]:
        return {"post": await posts.get(kit, post_id=posts.object_id(post_id, what="postId"))}

    @routes.delete("/{post_id}", status_code=204)
    async def delete_post(post_id: str, user: identity.User, kit: kit_app.KitDep) -> Response:
        post_id = posts.object_id(post_id, what="postId")
        await posts.delete(kit, user_id=user.user_id, post_id=post_id)
        return Response(status_code=204)

    return routes
