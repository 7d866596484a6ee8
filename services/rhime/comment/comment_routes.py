"""A post's comments: write one, read them newest first, count them, delete your own."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Annotated

from fastapi import APIRouter, Query, Response

from rhime.comment import comments, models
from rhime.kit import app as kit_app
from rhime.kit import identity


def router(*, page_size: int) -> APIRouter:
    routes = APIRouter(prefix="/api/comments", tags=["comments"])

    @routes.post("/posts/{post_id}", status_code=201)
    async def create_comment(
        post_id: str, body: models.NewComment, user: identity.User, kit: kit_app.KitDep
    ) -> dict[str, models.CommentOut]:
        post_id = comments.object_id(post_id, what="postId")
        comment = await comments.create(kit, user_id=user.user_id, post_id=post_id, text=body.text)
        return {"comment": comment}

    @routes.get("/posts/{post_id}")
    async def list_comments(
        post_id: str,
        _: identity.Caller,
        kit: kit_app.KitDep,
        before: Annotated[str | None, Query(max_length=24)] = None,
    ) -> models.CommentPage:
        post_id = comments.object_id(post_id, what="postId")
        anchor = comments.object_id(before, what="before") if before is not None else None
        return await comments.of_post(kit, post_id=post_id, before=anchor, limit=page_size)

    @routes.get("/posts/{post_id}/count")
    async def count_comments(post_id: str, _: identity.Caller, kit: kit_app.KitDep) -> models.Count:
        post_id = comments.object_id(post_id, what="postId")
        return models.Count(count=await comments.count(kit, post_id=post_id))

    @routes.delete("/{comment_id}", status_code=204)
    async def delete_comment(comment_id: str, user: identity.User, kit: kit_app.KitDep) -> Response:
        comment_id = comments.object_id(comment_id, what="commentId")
        await comments.delete(kit, user_id=user.user_id, comment_id=comment_id)
        return Response(status_code=204)

    return routes
