"""Deleting an account through the gateway, on the platform as `make run` starts it: a person
with posts, comments, likes, follows both ways, blocks both ways, a profile picture, Spotify,
notifications and recommendations deletes their account, and afterwards no store of the
platform holds their id or userName, and the counts others see are corrected.

The stores walked (`holders`): every document of every collection of every MongoDB database
(`rhime_` auth, user, post, comment, likes, graph, feed, music, notification, and any other the
server lists: the graph's blocks and each context's copy of them among them), every Redis key
(SCAN over all of them, under every namespace and rq's, with each value read by its type)
and every object of every S3 bucket (key and body).
Two Redis keys may still name the person, each asserted to expire by itself: auth's
`signed-out:{id}`, which keeps their unexpired tokens refused (it outlives the last token by
a minute), and the gateway's `rate:user:{id}:…` window, which a request with their old token
opens again. Events already in the JetStream streams are not a store walked here: they age
out with the streams' limits.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import bson.json_util
import httpx
import pytest
import redis.asyncio as aioredis
from botocore.config import Config
from motor.motor_asyncio import AsyncIOMotorClient

from rhime.apiclient import ApiError, Session
from rhime.kit import access_tokens
from rhime.runtime import local
from tests.journey.test_journey import PASSWORD, eventually, newcomer

# the keys allowed to name the person after the deletion, and their longest life
EXPIRING = {"signed-out": access_tokens.TTL_SECONDS + 60, "rate:user": 61}


async def _mongo(url: str, needles: list[str]) -> list[str]:
    found = []
    client: Any = AsyncIOMotorClient(url)
    try:
        for db_name in await client.list_database_names():
            db = client[db_name]
            for name in await db.list_collection_names():
                async for doc in db[name].find({}):
                    text = bson.json_util.dumps(doc).lower()
                    if any(n in text for n in needles):
                        found.append(f"mongo {db_name}.{name} {doc.get('_id')!r}")
    finally:
        client.close()
    return found


async def _redis_value(r: aioredis.Redis, key: bytes) -> str:
    kind = (await r.type(key)).decode()
    value: Any
    if kind == "string":
        value = await r.get(key)
    elif kind == "hash":
        value = await r.hgetall(key)
    elif kind == "set":
        value = await r.smembers(key)
    elif kind == "zset":
        value = await r.zrange(key, 0, -1, withscores=True)
    elif kind == "list":
        value = await r.lrange(key, 0, -1)
    elif kind == "stream":
        value = await r.xrange(key)
    else:
        value = kind
    return repr(value).lower()


async def _redis(url: str, needles: list[str]) -> list[str]:
    found = []
    r = aioredis.from_url(url)
    try:
        async for key in r.scan_iter(count=1000):
            text = key.decode("latin-1").lower() + " " + await _redis_value(r, key)
            if any(n in text for n in needles):
                found.append(f"redis {key.decode('latin-1')}")
    finally:
        await r.aclose()
    return found


def _s3(url: str, needles: list[str]) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local-secret",
        config=Config(s3={"addressing_style": "path"}),
    )
    found = []
    for bucket in s3.list_buckets().get("Buckets", []):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
        for page in pages:
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                text = obj["Key"].lower() + " " + body.decode("latin-1").lower()
                if any(n in text for n in needles):
                    found.append(f"s3 {bucket['Name']}/{obj['Key']}")
    return found


async def holders(platform: local.Platform, *needles: str) -> list[str]:
    """Every document, Redis key and S3 object of the platform holding one of `needles`."""
    urls = platform.runtime.urls
    wanted = [n.lower() for n in needles]
    return [
        *await _mongo(urls["mongo"], wanted),
        *await _redis(urls["redis"], wanted),
        *_s3(urls["s3"], wanted),
    ]


async def _expiring(platform: local.Platform, found: list[str]) -> list[str]:
    """`found` less the keys allowed to name the person a while (checked to expire)."""
    r = aioredis.from_url(platform.runtime.urls["redis"])
    left = []
    try:
        for entry in found:
            kind, _, name = entry.partition(" ")
            part = name.split(":", 1)[1] if ":" in name else ""
            limit = next((t for p, t in EXPIRING.items() if part.startswith(p + ":")), None)
            ttl = await r.ttl(name) if kind == "redis" and limit is not None else -1
            if limit is None or not 0 < ttl <= limit:
                left.append(entry)
    finally:
        await r.aclose()
    return left


def _keys(value: Any) -> set[str]:
    """Every key at any depth of a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def replay_export(platform: local.Platform, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.gateway_url) as client:
        return await client.get(
            "/api/users/me/export", headers={"Authorization": f"Bearer {token}"}
        )


async def _count(session: Session, path: str, field: str = "count") -> int:
    return int((await session.request("GET", path))[field])


async def _upload_image(me: Session) -> None:
    r = await me.http.put(f"/api/users/{me.user_id}/image", json={"contentType": "image/png"})
    assert r.status_code == 200, r.text
    upload = r.json()
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    async with httpx.AsyncClient(timeout=30) as outside:
        sent = await outside.post(
            upload["url"], data=upload["fields"], files={"file": ("me.png", png, "image/png")}
        )
    assert sent.status_code == 204, sent.text
    await me.request("POST", f"/api/users/{me.user_id}/image/confirm", json={"key": upload["key"]})


@pytest.mark.slow
async def test_a_deleted_account_leaves_nothing_behind(platform: local.Platform) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"leaving{tag}"
    gone = await newcomer(platform, name)
    ana, bo = [await newcomer(platform, f"{n}{tag}") for n in ("staying", "remaining")]
    # people they do not follow, so that each has someone to be recommended
    others = [await newcomer(platform, f"listener{n}x{tag}") for n in range(3)]
    try:
        [track] = await gone.search_tracks("a", limit=1)
        mine = await gone.post(track=track, caption="my last share")
        theirs = await ana.post(track=track, caption="ana's share")
        await gone.follow(ana.user_id)
        await ana.follow(gone.user_id)
        await bo.follow(gone.user_id)
        await bo.follow(ana.user_id)
        bo_comment = await bo.comment(theirs, "bo was here")
        await gone.comment(theirs, "so good")
        await ana.comment(mine, "thanks for this")
        await eventually(lambda: gone.request("GET", f"/api/likes/{bo_comment}"), bool)
        await gone.like(theirs)
        await gone.like(bo_comment)
        await bo.like(theirs)
        await ana.like(mine)
        await _upload_image(gone)

        likes_of = f"/api/like-counts/{theirs}"
        comments_of = f"/api/comments/posts/{theirs}/count"
        await eventually(lambda: _count(ana, likes_of), lambda n: n == 2)
        await eventually(lambda: _count(ana, f"/api/like-counts/{bo_comment}"), lambda n: n == 1)
        assert await _count(ana, comments_of) == 2
        counts = f"/api/graph/users/{ana.user_id}/counts"
        assert await ana.request("GET", counts) == {"followers": 2, "following": 1}
        await eventually(
            lambda: ana.request("GET", "/api/notifications"),
            lambda body: (
                {n["kind"] for n in body["notifications"]} == {"like", "comment", "follow"}
            ),
        )
        await eventually(
            lambda: gone.request("GET", "/api/notifications"),
            lambda body: (
                {n["kind"] for n in body["notifications"]} == {"like", "comment", "follow"}
            ),
        )
        await eventually(gone.recommendations, bool)
        await eventually(ana.home, lambda page: mine in [p["postId"] for p in page["posts"]])
        # A block each way: every context's copy of blocks names them too.
        await gone.block(others[0].user_id)
        await others[1].block(gone.user_id)

        # The data export holds all of it, and no secret. Likes are exported from the stored
        # like state, which trails a like by the like-updater's linger (about a second).
        async def exported() -> httpx.Response:
            return await gone.http.get("/api/users/me/export")

        r = await eventually(
            exported, lambda r: r.status_code != 200 or len(r.json()["likes"]) == 2
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == f'attachment; filename="rhime-{name}.json"'
        archive = r.json()
        assert archive["account"]["userName"] == name
        assert archive["account"]["email"] == f"{name}@example.com"
        assert archive["profile"]["profileImage"].startswith("http")
        assert [p["postId"] for p in archive["posts"]] == [mine]
        assert [c["text"] for c in archive["comments"]] == ["so good"]
        assert {x["itemId"] for x in archive["likes"]} == {theirs, bo_comment}
        assert archive["followers"] == sorted([ana.user_id, bo.user_id])
        assert archive["following"] == [ana.user_id]
        assert archive["blocking"] == [others[0].user_id]
        assert archive["spotify"]["connected"] is True
        assert archive["taste"]["artists"]
        assert archive["recommendations"]
        assert {n["kind"] for n in archive["notifications"]} == {"like", "comment", "follow"}
        assert not _keys(archive) & {"password", "access", "refresh", "accessToken"}
        assert "$argon2" not in r.text

        # Before: the walk sees the person in every kind of store (so it can see them at all;
        # the copies of blocks follow by events).
        stores = (
            "mongo rhime_auth.users",
            "mongo rhime_user.profiles",
            "mongo rhime_post.posts",
            "mongo rhime_comment.comments",
            "mongo rhime_likes.likes",
            "mongo rhime_graph.edges",
            "mongo rhime_feed.posts",
            "mongo rhime_music.tokens",
            "mongo rhime_music.tastes",
            "mongo rhime_music.postings",
            "mongo rhime_music.recommendations",
            "mongo rhime_notification.groups",
            "mongo rhime_notification.inboxes",
            "redis rhime:connected:",
            "s3 ",
            *(
                f"mongo rhime_{db}.blocks"
                for db in ("graph", "user", "comment", "likes", "feed", "music")
            ),
        )

        def everywhere(found: list[str]) -> bool:
            return all(any(h.startswith(store) for h in found) for store in stores)

        await eventually(lambda: holders(platform, gone.user_id, name), everywhere)

        # A wrong password is refused in the envelope, and changes nothing.
        with pytest.raises(ApiError) as wrong:
            await gone.delete_account(password="not!mypass1")
        assert wrong.value.status == 400
        assert wrong.value.errors == [{"msg": "The password is incorrect.", "field": "password"}]
        token = gone.http.cookies["accessToken"]
        await gone.delete_account(password=PASSWORD)
        assert "accessToken" not in gone.http.cookies

        # Signed out everywhere at once, and they cannot sign in again.
        async with httpx.AsyncClient(base_url=platform.gateway_url) as replay:
            r = await replay.get("/api/feed", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        with pytest.raises(ApiError) as signin:
            await gone.sign_in(login=name, password=PASSWORD)
        assert signin.value.status == 400

        assert (await replay_export(platform, token)).status_code == 401

        # Others' counts are corrected.
        await eventually(lambda: _count(ana, likes_of), lambda n: n == 1)
        await eventually(lambda: _count(ana, f"/api/like-counts/{bo_comment}"), lambda n: n == 0)
        assert await _count(ana, comments_of) == 1
        await eventually(
            lambda: ana.request("GET", counts),
            lambda c: c == {"followers": 1, "following": 0},
        )
        # each edge is unfollowed in turn: bo's may settle after ana's
        await eventually(
            lambda: bo.request("GET", f"/api/graph/users/{bo.user_id}/counts"),
            lambda c: c == {"followers": 0, "following": 1},
        )

        def without_them(body: dict[str, Any]) -> bool:
            found = body["notifications"]
            return all(gone.user_id not in n["actors"] for n in found) and {
                n["kind"]: n["actorCount"] for n in found
            } == {"like": 1, "comment": 1, "follow": 1}

        await eventually(lambda: ana.request("GET", "/api/notifications"), without_them)

        # Their post left the timelines of the people who followed them.
        await eventually(ana.home, lambda page: mine not in [p["postId"] for p in page["posts"]])

        # And no store holds their id or userName (but the two keys that expire by themselves).
        async def left() -> list[str]:
            return await _expiring(platform, await holders(platform, gone.user_id, name))

        await eventually(left, lambda found: not found, timeout=90)

        # Their userName and email can be taken again.
        again = Session(platform.gateway_url)
        try:
            out = await again.sign_up(
                user_name=name, email=f"{name}@example.com", password=PASSWORD
            )
            assert out["userId"] != gone.user_id
        finally:
            await again.close()
    finally:
        for session in (gone, ana, bo, *others):
            await session.close()
