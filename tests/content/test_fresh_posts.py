"""A post shared a moment ago can be commented on and liked before its `post.created` has
reached the comment and like services: they ask the post service."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import bson
import httpx
import pytest

from rhime import events
from rhime.comment import app as comment_app
from rhime.likes import like
from rhime.post import app as post_app
from tests.content.content_helpers import TRACK
from tests.support import auth_headers, eventually

ANA = str(bson.ObjectId())
BO = str(bson.ObjectId())


class Services:
    def __init__(self, post: Any, comment: Any, like: Any) -> None:
        self.post, self.comment, self.like = post, comment, like
        self.http = httpx.AsyncClient(timeout=10)

    async def shared_unannounced(self) -> str:
        """A live post in the post service whose event has not gone out."""
        oid = bson.ObjectId()
        await self.post.app.state.kit.database["posts"].insert_one(
            {
                "_id": str(oid),
                "user_id": ANA,
                "track": {**TRACK, "image": None},
                "caption": "",
                "created_at": oid.generation_time,
            }
        )
        return str(oid)

    async def comment_on(self, post_id: str) -> httpx.Response:
        return await self.http.post(
            f"{self.comment.url}/api/comments/posts/{post_id}",
            json={"text": "first!"},
            headers=auth_headers(BO),
        )

    async def like_it(self, post_id: str) -> httpx.Response:
        return await self.http.put(f"{self.like.url}/api/likes/{post_id}", headers=auth_headers(BO))


@pytest.fixture
async def services(make_settings: Callable[..., Any], serve: Any) -> Any:
    post = await serve(post_app.create(make_settings(post_app.Settings, component="post")))
    urls = {"post": post.url}
    comment = await serve(
        comment_app.create(
            make_settings(comment_app.Settings, component="comment", service_urls=urls)
        )
    )
    liking = await serve(
        like.create(make_settings(like.Settings, component="like", service_urls=urls))
    )
    found = Services(post, comment, liking)
    yield found
    await found.http.aclose()


async def test_a_fresh_post_takes_comments_and_likes_at_once(services: Services) -> None:
    post_id = await services.shared_unannounced()
    r = await services.comment_on(post_id)
    assert r.status_code == 201, r.text
    r = await services.like_it(post_id)
    assert r.status_code == 200, r.text
    assert r.json()["isLiked"] is True


async def test_an_unknown_post_is_still_not_found(services: Services) -> None:
    nobody = str(bson.ObjectId())
    assert (await services.comment_on(nobody)).status_code == 404
    assert (await services.like_it(nobody)).status_code == 404


async def test_a_deletion_that_arrives_after_the_lookup_still_closes_the_post(
    services: Services,
) -> None:
    post_id = await services.shared_unannounced()
    assert (await services.comment_on(post_id)).status_code == 201
    assert (await services.like_it(post_id)).status_code == 200
    await services.post.app.state.kit.database["posts"].delete_one({"_id": post_id})
    await services.post.app.state.kit.require_bus().publish(
        events.PostDeleted(id=f"post.deleted:{post_id}", post_id=post_id, user_id=ANA)
    )

    async def closed() -> None:
        assert (await services.comment_on(post_id)).status_code == 404
        assert (await services.like_it(post_id)).status_code == 404

    await eventually(closed)
    # a late `post.created` does not reopen it
    await services.post.app.state.kit.require_bus().publish(
        events.PostCreated(
            id=f"post.created:{post_id}",
            post_id=post_id,
            user_id=ANA,
            created_at=datetime.datetime.now(datetime.UTC),
        )
    )
    assert (await services.comment_on(post_id)).status_code == 404
