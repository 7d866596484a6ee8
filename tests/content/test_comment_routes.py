from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bson
import httpx
import pytest

from rhime import events
from rhime.comment import app as comment_app
from tests.content.content_helpers import service_headers
from tests.support import auth_headers, eventually, published, stream_gone

ALICE = str(bson.ObjectId())
BOB = str(bson.ObjectId())


class Comments:
    def __init__(self, client: httpx.AsyncClient, served: Any, settings: Any) -> None:
        self.client = client
        self.kit = served.app.state.kit
        self.settings = settings

    async def new_post(self, author: str = ALICE) -> str:
        post_id = str(bson.ObjectId())
        event = events.PostCreated(
            id=f"post.created:{post_id}", post_id=post_id, user_id=author, created_at=events.now()
        )
        await self.kit.require_bus().publish(event)

        async def visible() -> None:
            r = await self.client.get(f"/api/comments/posts/{post_id}", headers=auth_headers(BOB))
            assert r.status_code == 200
            r = await self.comment(post_id, "hello?", BOB)
            assert r.status_code == 201, r.text
            await self.client.delete(
                f"/api/comments/{r.json()['comment']['commentId']}", headers=auth_headers(BOB)
            )

        await eventually(visible)
        return post_id

    async def comment(self, post_id: str, text: str, user: str) -> httpx.Response:
        return await self.client.post(
            f"/api/comments/posts/{post_id}", json={"text": text}, headers=auth_headers(user)
        )


@pytest.fixture
async def comments(make_settings: Callable[..., Any], serve: Any) -> Any:
    settings = make_settings(comment_app.Settings, component="comment")
    served = await serve(comment_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield Comments(client, served, settings)


async def test_comment_on_existing_post_pages_of_ten(comments: Comments) -> None:
    post_id = await comments.new_post()
    made = []
    for n in range(23):
        r = await comments.comment(post_id, f"comment {n}", BOB if n % 2 else ALICE)
        assert r.status_code == 201
        made.append(r.json()["comment"]["commentId"])
    seen: list[dict[str, Any]] = []
    anchor = None
    sizes = []
    while True:
        query = f"?before={anchor}" if anchor else ""
        r = await comments.client.get(
            f"/api/comments/posts/{post_id}{query}", headers=auth_headers(ALICE)
        )
        page = r.json()
        sizes.append(len(page["comments"]))
        seen += page["comments"]
        anchor = page["next"]
        if anchor is None:
            break
    assert sizes == [10, 10, 3]
    assert [c["commentId"] for c in seen] == list(reversed(made))
    assert seen[-1]["text"] == "comment 0"
    r = await comments.client.get(
        f"/api/comments/posts/{post_id}/count", headers=auth_headers(ALICE)
    )
    assert r.json() == {"count": 23}
    r = await comments.client.post(
        "/internal/comments/counts",
        json={"ids": [post_id, str(bson.ObjectId())]},
        headers=service_headers("feed"),
    )
    assert r.json()["counts"][post_id] == 23
    created = await published(comments.settings, "comment.created", expect=24)
    assert len({e["comment_id"] for e in created}) == 24


async def test_bad_inputs(comments: Comments) -> None:
    post_id = await comments.new_post()
    r = await comments.comment(post_id, "x" * 121, ALICE)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "text"
    for text in ("", "   "):
        r = await comments.comment(post_id, text, ALICE)
        assert r.status_code == 400
    r = await comments.client.post(
        f"/api/comments/posts/{post_id}", json={}, headers=auth_headers(ALICE)
    )
    assert r.status_code == 400
    r = await comments.comment("nope", "hi", ALICE)
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"] == "Invalid postId"
    r = await comments.comment(str(bson.ObjectId()), "hi", ALICE)
    assert r.status_code == 404
    r = await comments.client.get(
        f"/api/comments/posts/{post_id}?before=zz", headers=auth_headers(ALICE)
    )
    assert r.status_code == 400
    r = await comments.client.delete("/api/comments/123", headers=auth_headers(ALICE))
    assert r.status_code == 400
    r = await comments.client.post(f"/api/comments/posts/{post_id}", json={"text": "hi"})
    assert r.status_code == 401
    r = await comments.comment(post_id, "x" * 120, ALICE)
    assert r.status_code == 201
    r = await comments.client.get(
        f"/api/comments/posts/{post_id}/count", headers=auth_headers(ALICE)
    )
    assert r.json() == {"count": 1}


async def test_delete_own_comment_only(comments: Comments) -> None:
    post_id = await comments.new_post()
    r = await comments.comment(post_id, "mine", ALICE)
    comment_id = r.json()["comment"]["commentId"]
    r = await comments.client.delete(f"/api/comments/{comment_id}", headers=auth_headers(BOB))
    assert r.status_code == 403
    r = await comments.client.delete(f"/api/comments/{comment_id}", headers=auth_headers(ALICE))
    assert r.status_code == 204
    r = await comments.client.delete(f"/api/comments/{comment_id}", headers=auth_headers(ALICE))
    assert r.status_code == 404
    deleted = await published(comments.settings, "comment.deleted", expect=2)
    assert comment_id in {e["comment_id"] for e in deleted}


async def test_deleted_post_takes_no_comments_even_after_a_late_create(
    comments: Comments,
) -> None:
    post_id = await comments.new_post()
    assert (await comments.comment(post_id, "before", BOB)).status_code == 201
    bus = comments.kit.require_bus()
    await bus.publish(
        events.PostDeleted(id=f"post.deleted:{post_id}", post_id=post_id, user_id=ALICE)
    )

    async def closed() -> None:
        assert (await comments.comment(post_id, "after", BOB)).status_code == 404

    await eventually(closed)
    # a redelivered creation (a new message id) must not reopen it
    await bus.publish(
        events.PostCreated(
            id=f"post.created:{post_id}:again",
            post_id=post_id,
            user_id=ALICE,
            created_at=events.now(),
        )
    )

    async def emptied() -> None:
        r = await comments.client.get(
            f"/api/comments/posts/{post_id}/count", headers=auth_headers(ALICE)
        )
        assert r.json() == {"count": 0}

    await eventually(emptied)
    await comments.new_post()  # consumed after the late creation
    assert (await comments.comment(post_id, "after", BOB)).status_code == 404


async def test_a_deleted_posts_comments_are_announced_deleted(comments: Comments) -> None:
    """So that the like service retires them: no likeable, counted orphans."""
    post_id = await comments.new_post()
    made = [await comments.comment(post_id, text, BOB) for text in ("one", "two")]
    ids = {r.json()["comment"]["commentId"] for r in made}
    bus = comments.kit.require_bus()
    await bus.publish(
        events.PostDeleted(id=f"post.deleted:{post_id}", post_id=post_id, user_id=ALICE)
    )
    deleted = await published(comments.settings, "comment.deleted", expect=2)
    assert {(e["comment_id"], e["post_id"], e["user_id"]) for e in deleted} >= {
        (i, post_id, BOB) for i in ids
    }


async def test_comment_and_delete_while_nats_refuses_succeed_and_publish_later(
    comments: Comments,
) -> None:
    post_id = await comments.new_post()
    async with stream_gone(comments.settings, "comment"):
        r = await comments.comment(post_id, "still here", BOB)
        assert r.status_code == 201, r.text
        comment_id = r.json()["comment"]["commentId"]
        r = await comments.client.delete(f"/api/comments/{comment_id}", headers=auth_headers(BOB))
        assert r.status_code == 204, r.text
    created = await published(comments.settings, "comment.created", expect=1)
    deleted = await published(comments.settings, "comment.deleted", expect=1)
    assert comment_id in [e["comment_id"] for e in created]
    assert [e["comment_id"] for e in deleted] == [comment_id]
