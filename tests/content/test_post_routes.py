from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bson
import httpx
import pytest

from rhime.post import app as post_app
from rhime.runtime import servers
from rhime.spotify import app as spotify_app
from tests.content.content_helpers import (
    TRACK,
    connect_spotify,
    service_headers,
    spotify_settings,
)
from tests.support import auth_headers, published, stream_gone

ALICE = str(bson.ObjectId())
BOB = str(bson.ObjectId())


@pytest.fixture
async def client(make_settings: Callable[..., Any], serve: Any, spotify_url: str) -> Any:
    """post, and the spotify service it looks tracks up with; Alice and Bob are connected."""
    port = servers.free_port()
    public = f"http://127.0.0.1:{port}"
    spotify = spotify_settings(make_settings, fake_url=spotify_url, public_url=public)
    await serve(spotify_app.create(spotify), port=port)
    for listener, user in enumerate((ALICE, BOB), start=1):
        await connect_spotify(public, user, listener=listener)
    settings = make_settings(post_app.Settings, component="post", service_urls={"spotify": public})
    served = await serve(post_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as c:
        c.settings = settings  # type: ignore[attr-defined]
        c.spotify_url = spotify_url  # type: ignore[attr-defined]
        yield c


async def new_post(client: httpx.AsyncClient, user: str, caption: str = "") -> dict[str, Any]:
    r = await client.post(
        "/api/posts", json={"trackId": TRACK["id"], "caption": caption}, headers=auth_headers(user)
    )
    assert r.status_code == 201, r.text
    post: dict[str, Any] = r.json()["post"]
    return post


async def test_create_and_read_keeps_the_caption(client: httpx.AsyncClient) -> None:
    post = await new_post(client, ALICE, caption="this one is for the road")
    assert post["caption"] == "this one is for the road"
    assert post["userId"] == ALICE
    assert post["track"]["artists"] == TRACK["artists"]
    r = await client.get(f"/api/posts/{post['postId']}", headers=auth_headers(BOB))
    assert r.status_code == 200
    assert r.json()["post"] == post
    assert post["createdAt"].endswith("Z")


async def test_post_created_is_published(client: httpx.AsyncClient) -> None:
    post = await new_post(client, ALICE)
    found = await published(client.settings, "post.created", expect=1)  # type: ignore[attr-defined]
    assert [(e["post_id"], e["user_id"]) for e in found] == [(post["postId"], ALICE)]


async def test_the_track_is_looked_up_on_spotify(client: httpx.AsyncClient) -> None:
    post = await new_post(client, ALICE)
    spotify = client.spotify_url  # type: ignore[attr-defined]
    assert post["track"] == {
        **TRACK,
        "image": f"{spotify}/_fake/image/{post['track']['image'].rsplit('/', 1)[1]}",
    }
    assert post["track"]["image"].startswith(f"{spotify}/_fake/image/")


async def test_track_details_from_the_client_are_refused(client: httpx.AsyncClient) -> None:
    forged = {
        **TRACK,
        "url": "https://phish.example/open-in-spotify",
        "image": "https://tracker.example/pixel.png",
    }
    for body in ({"track": forged}, {"trackId": TRACK["id"], "track": forged}):
        r = await client.post("/api/posts", json=body, headers=auth_headers(ALICE))
        assert r.status_code == 400, r.text
    r = await client.get(f"/api/posts/users/{ALICE}/count", headers=auth_headers(ALICE))
    assert r.json() == {"count": 0}


async def test_a_track_spotify_does_not_know_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/posts", json={"trackId": "0000000000000000000000"}, headers=auth_headers(ALICE)
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [{"msg": "No such track exists on Spotify.", "field": "trackId"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "trackId"),
        ({"trackId": ""}, "trackId"),
        ({"trackId": "../../v1/me"}, "trackId"),
        ({"trackId": "x" * 65}, "trackId"),
        ({"trackId": TRACK["id"], "caption": "x" * 281}, "caption"),
        ({"trackId": TRACK["id"], "extra": 1}, "extra"),
        ({"trackId": TRACK["id"], "caption": 5}, "caption"),
    ],
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/api/posts", json=body, headers=auth_headers(ALICE))
    assert r.status_code == 400, r.text
    assert field in [e.get("field") for e in r.json()["errors"]]
    r = await client.get(f"/api/posts/users/{ALICE}/count", headers=auth_headers(ALICE))
    assert r.json() == {"count": 0}


async def test_caption_of_280_is_accepted(client: httpx.AsyncClient) -> None:
    post = await new_post(client, ALICE, caption="y" * 280)
    assert len(post["caption"]) == 280


async def test_bad_ids_and_missing_identity(client: httpx.AsyncClient) -> None:
    h = auth_headers(ALICE)
    for path in ("/api/posts/nope", "/api/posts/" + "z" * 24):
        r = await client.get(path, headers=h)
        assert r.status_code == 400
        assert r.json()["errors"][0]["msg"] == "Invalid postId"
    r = await client.get("/api/posts/users/123/count", headers=h)
    assert r.json()["errors"][0]["msg"] == "Invalid userId"
    r = await client.get(f"/api/posts/users/{ALICE}?before=abc", headers=h)
    assert r.status_code == 400
    r = await client.get(f"/api/posts/users/{ALICE}?limit=0", headers=h)
    assert r.status_code == 400
    r = await client.get(f"/api/posts/{bson.ObjectId()}", headers=h)
    assert r.status_code == 404
    r = await client.post("/api/posts", json={"trackId": TRACK["id"]})
    assert r.status_code == 401
    r = await client.post("/internal/posts/batch", json={"ids": []}, headers=h)
    assert r.status_code == 403


async def test_user_posts_newest_first_with_keyset_pages(client: httpx.AsyncClient) -> None:
    made = [(await new_post(client, ALICE, caption=str(n)))["postId"] for n in range(7)]
    await new_post(client, BOB)
    h = auth_headers(BOB)
    seen: list[str] = []
    url = f"/api/posts/users/{ALICE}?limit=3"
    anchor = None
    while True:
        r = await client.get(url + (f"&before={anchor}" if anchor else ""), headers=h)
        assert r.status_code == 200
        page = r.json()
        seen += [p["postId"] for p in page["posts"]]
        anchor = page["next"]
        if anchor is None:
            break
    assert seen == list(reversed(made))
    r = await client.get(f"/api/posts/users/{ALICE}/count", headers=h)
    assert r.json() == {"count": 7}


async def test_delete_own_post_only(client: httpx.AsyncClient) -> None:
    post = await new_post(client, ALICE)
    pid = post["postId"]
    r = await client.delete(f"/api/posts/{pid}", headers=auth_headers(BOB))
    assert r.status_code == 403
    r = await client.delete(f"/api/posts/{pid}", headers=auth_headers(ALICE))
    assert r.status_code == 204
    r = await client.get(f"/api/posts/{pid}", headers=auth_headers(ALICE))
    assert r.status_code == 404
    r = await client.delete(f"/api/posts/{pid}", headers=auth_headers(ALICE))
    assert r.status_code == 404
    found = await published(client.settings, "post.deleted", expect=1)  # type: ignore[attr-defined]
    assert [(e["post_id"], e["user_id"]) for e in found] == [(pid, ALICE)]
    r = await client.get(f"/api/posts/users/{ALICE}/count", headers=auth_headers(ALICE))
    assert r.json() == {"count": 0}


async def test_internal_batch(client: httpx.AsyncClient) -> None:
    a = await new_post(client, ALICE, caption="a")
    b = await new_post(client, BOB, caption="b")
    service = service_headers("feed")
    r = await client.post(
        "/internal/posts/batch",
        json={"ids": [a["postId"], b["postId"], str(bson.ObjectId()), "junk"]},
        headers=service,
    )
    assert r.status_code == 200
    assert r.json()["posts"] == {a["postId"]: a, b["postId"]: b}


async def test_a_post_stored_while_nats_refuses_is_created_and_published_later(
    client: httpx.AsyncClient,
) -> None:
    settings = client.settings  # type: ignore[attr-defined]
    async with stream_gone(settings, "post"):
        post = await new_post(client, ALICE)  # 201: the post is stored with its event
    found = await published(settings, "post.created", expect=1)  # by the outbox relay
    assert [e["post_id"] for e in found] == [post["postId"]]


async def test_a_delete_while_nats_refuses_succeeds_and_is_published_later(
    client: httpx.AsyncClient,
) -> None:
    settings = client.settings  # type: ignore[attr-defined]
    post = await new_post(client, ALICE)
    async with stream_gone(settings, "post"):
        r = await client.delete(f"/api/posts/{post['postId']}", headers=auth_headers(ALICE))
        assert r.status_code == 204, r.text
        r = await client.get(f"/api/posts/{post['postId']}", headers=auth_headers(ALICE))
        assert r.status_code == 404
    found = await published(settings, "post.deleted", expect=1)
    assert [e["post_id"] for e in found] == [post["postId"]]
