"""Actions on posts: publish, like, and the inline comments."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query
from fastapi.responses import Response

from rhime.web import gateway, people, visit
from rhime.web.visit import VisitDep

ObjectId = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{24}$")]


def router() -> APIRouter:
    r = APIRouter()
    r.post("/posts")(publish)
    r.post("/posts/{post_id}/like")(like)
    r.post("/comments/{comment_id}/like")(like_comment)
    r.post("/posts/{post_id}/delete")(delete_post)
    r.get("/posts/{post_id}/comments")(comments)
    r.post("/posts/{post_id}/comments")(add_comment)
    r.post("/comments/{comment_id}/delete")(delete_comment)
    return r


async def publish(
    v: VisitDep,
    track: Annotated[str, Form()] = "",
    caption: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    viewer = await v.require()
    chosen = _track_id(track)
    if chosen is None:
        message = "Choose a track to share."
        if v.partial:
            return v.fragment("_errors.html", status=400, messages=[message])
        return v.page("error.html", status=400, messages=[message])
    try:
        body = await v.api.post("/api/posts", {"trackId": chosen, "caption": caption})
    except gateway.ApiFailure as failure:
        if v.partial and failure.status < 500 and failure.status != 401:
            return v.fragment("_errors.html", status=failure.status, messages=failure.messages)
        raise
    if v.partial != "new-post":
        return visit.redirect(v.request, "/")
    post = dict(body["post"]) if isinstance(body, dict) and "post" in body else {}
    # The timeline fills by fan-out in the background; show the new post right away, with
    # the author card the timeline would show.
    me = await v.api.optional(f"/api/users/{viewer.user_id}")
    author = people.profile(me, user_id=viewer.user_id) if me else {}
    post.update(
        author={"userName": viewer.user_name, **author, "userId": viewer.user_id},
        likeCount=0,
        commentCount=0,
        likedByMe=False,
    )
    return v.fragment("_post.html", post=post)


async def like(
    v: VisitDep,
    post_id: ObjectId,
    liked: Annotated[str, Form()] = "1",
    shown: Annotated[int | None, Form(alias="count", ge=0)] = None,
) -> Response:
    return await _toggle_like(v, post_id, want=liked == "1", shown=shown, key="postId")


async def like_comment(
    v: VisitDep,
    comment_id: ObjectId,
    liked: Annotated[str, Form()] = "1",
    shown: Annotated[int | None, Form(alias="count", ge=0)] = None,
) -> Response:
    # the like API takes comment ids as it takes post ids
    return await _toggle_like(v, comment_id, want=liked == "1", shown=shown, key="commentId")


async def delete_post(v: VisitDep, post_id: ObjectId) -> Response:
    await v.require()
    await v.api.delete(f"/api/posts/{post_id}")
    if v.partial:
        # rhime.js removes the card itself
        return Response(status_code=200)
    back = visit.back(v.request)
    # the post's own comments page is gone with it
    return visit.redirect(v.request, "/" if back.startswith(f"/posts/{post_id}") else back)


async def comments(
    v: VisitDep,
    post_id: ObjectId,
    before: Annotated[str | None, Query(max_length=24)] = None,
) -> Response:
    await v.require()
    context = await _comments(v, post_id, before=before)
    if v.partial:
        return v.fragment("_comments.html", **context)
    return v.page("comments.html", **context)


async def add_comment(
    v: VisitDep, post_id: ObjectId, text: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    await v.require()
    error: list[str] = []
    try:
        await v.api.post(f"/api/comments/posts/{post_id}", {"text": text})
    except gateway.ApiFailure as failure:
        if failure.status >= 500 or failure.status == 401:
            raise
        error = failure.messages
    if not v.partial and not error:
        return visit.redirect(v.request, visit.back(v.request, f"/posts/{post_id}/comments"))
    context = await _comments(v, post_id, before=None)
    context.update(errors=error, draft=text if error else "")
    if v.partial:
        return v.fragment("_comments.html", **context)
    return v.page("comments.html", status=400, **context)


async def delete_comment(
    v: VisitDep, comment_id: ObjectId, post_id: Annotated[str, Form(alias="postId")]
) -> Response:
    await v.require()
    await v.api.delete(f"/api/comments/{comment_id}")
    if not v.partial:
        return visit.redirect(v.request, visit.back(v.request, f"/posts/{post_id}/comments"))
    return v.fragment("_comments.html", **await _comments(v, post_id, before=None))


async def _toggle_like(
    v: visit.Visit, item_id: str, *, want: bool, shown: int | None, key: str
) -> Response:
    await v.require()
    path = f"/api/likes/{item_id}"
    reply = await (v.api.put(path) if want else v.api.delete(path))
    if not v.partial:
        return visit.redirect(v.request, visit.back(v.request))
    counts = await v.api.get("/api/like-counts", params={"ids": item_id})
    state = bool(reply.get("isLiked", want)) if isinstance(reply, dict) else want
    count = like_count(_count_of(counts, item_id), shown=shown, liked=state, want=want)
    return v.fragment("_like.html", post={key: item_id, "likedByMe": state, "likeCount": count})


def _track_id(raw: str) -> str | None:
    """The chosen search result's Spotify id; the post service looks the track up itself."""
    value = raw.strip()
    return value if re.fullmatch(r"[A-Za-z0-9]{1,64}", value) else None


def like_count(counted: int, *, shown: int | None, liked: bool, want: bool) -> int:
    """The count to show after my action. Counts trail likes by a fraction of a second
    (`isLiked` does not), so right after a like the count service may not include it yet:
    the count the page showed, moved by my action, is the floor (or, after an unlike, the
    ceiling) until the service catches up."""
    if shown is None or liked != want:
        return max(counted, 0)
    if liked:
        return max(counted, shown + 1)
    return max(min(counted, shown - 1), 0)


def _count_of(body: Any, item_id: str) -> int:
    """`{"counts": {id: n}}` (like-counts) or `{"count": n}` (comment count)."""
    if not isinstance(body, dict):
        return 0
    counts = body.get("counts")
    value = counts.get(item_id) if isinstance(counts, dict) else body.get("count")
    return int(value) if isinstance(value, int) else 0


async def _comments(v: visit.Visit, post_id: str, *, before: str | None) -> dict[str, Any]:
    params = {"before": before} if before else None
    page, count = await gateway.gather(
        v.api.get(f"/api/comments/posts/{post_id}", params=params),
        v.api.get(f"/api/comments/posts/{post_id}/count"),
    )
    items = list(page.get("comments") or []) if isinstance(page, dict) else []
    ids = [str(c.get("commentId", "")) for c in items]
    authors, (liked, counts) = await gateway.gather(
        people.many(v.api, (c.get("userId", "") for c in items)), _comment_likes(v.api, ids)
    )
    return {
        "post_id": post_id,
        "comments": [
            {
                **c,
                "author": authors.get(c.get("userId", "")),
                "likedByMe": liked.get(i, False),
                "likeCount": counts.get(i, 0),
            }
            for c, i in zip(items, ids, strict=True)
        ],
        "next": page.get("next") if isinstance(page, dict) else None,
        "count": _count_of(count, post_id),
        "errors": [],
        "draft": "",
    }


async def _comment_likes(
    api: gateway.Gateway, ids: list[str]
) -> tuple[dict[str, bool], dict[str, int]]:
    """Whether I liked each comment, and its like count (a page holds at most 10)."""
    if not ids:
        return {}, {}
    liked, counts = await gateway.gather(
        api.post("/api/likes/liked", {"ids": ids}),
        api.get("/api/like-counts", params={"ids": ",".join(ids)}),
    )
    mine = liked.get("liked") if isinstance(liked, dict) else None
    return (
        {i: bool(v) for i, v in mine.items()} if isinstance(mine, dict) else {},
        {i: _count_of(counts, i) for i in ids},
    )
