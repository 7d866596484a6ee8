"""The end-to-end journey through the gateway only, as a new person would take it, against the
whole platform running as processes (what `make run` starts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from rhime.apiclient import ApiError, Session
from rhime.runtime import local

T = TypeVar("T")
PASSWORD = "s3cret!pass"


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, timeout: float = 60.0
) -> T:
    """Poll until `ok(value)`: events and jobs make some effects asynchronous."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"not reached in {timeout}s; last: {value!r}"
        await asyncio.sleep(0.25)


async def newcomer(platform: local.Platform, name: str, *, connect: bool = True) -> Session:
    session = Session(platform.gateway_url)
    await session.sign_up(user_name=name, email=f"{name}@example.com", password=PASSWORD)
    await session.sign_in(login=name, password=PASSWORD)
    if connect:
        await session.connect_spotify()
    return session


@pytest.mark.slow
async def test_the_journey_of_a_new_person(platform: local.Platform) -> None:
    others = [await newcomer(platform, f"listener{n}") for n in range(6)]
    gateway = platform.gateway_url
    me = httpx.AsyncClient(base_url=gateway, timeout=30)
    outside = httpx.AsyncClient(timeout=30)  # Spotify's pages and S3: not the gateway
    try:
        # Sign up, then sign in (by email) with a browser cookie.
        r = await me.post(
            "/api/auth/signup",
            json={"userName": "newcomer", "email": "newcomer@example.com", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        r = await me.post(
            "/api/auth/signin", json={"userName": "newcomer@example.com", "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        assert "accessToken" in me.cookies
        my_id = r.json()["userId"]

        # The Spotify-gated routes refuse until Spotify is connected.
        for path in ("/api/feed", "/api/recommendations", f"/api/users/{my_id}"):
            r = await me.get(path)
            assert r.status_code == 401, path
            assert r.json() == {
                "errors": [{"msg": "The user is not authorized to access this resource."}]
            }

        # Connect Spotify through the OAuth dance; the callback lands back in the app.
        r = await me.get("/api/spotify/authorize")
        assert r.status_code == 302
        consent = await outside.get(r.headers["location"])
        assert consent.status_code == 302
        back = urlsplit(consent.headers["location"])
        r = await me.get(f"{back.path}?{back.query}")
        assert r.status_code == 302
        assert r.headers["location"] == "/"

        # Without signing in again, recommendations appear with similarity and explanation.
        async def recommendations() -> list[dict[str, Any]]:
            r = await me.get("/api/recommendations")
            return r.json()["recommendations"] if r.status_code == 200 else []

        # (the platform is shared: people other tests made may be recommended too)
        mine = {s.user_id for s in others}
        recs = await eventually(
            recommendations, lambda rs: len(rs) >= 2 and any(r["userId"] in mine for r in rs)
        )
        first = next(r for r in recs if r["userId"] in mine)
        assert 0 < first["similarity"] <= 1
        assert first["percent"] == round(first["similarity"] * 100)
        explanation = first["explanation"]
        assert set(explanation) >= {"commonArtists", "commonTracks", "commonGenres", "breakdown"}
        assert explanation["commonArtists"] or explanation["commonGenres"]

        # Follow a recommended person; they post a track with a caption.
        friend_id = first["userId"]
        friend = next(s for s in others if s.user_id == friend_id)
        r = await me.put(f"/api/graph/following/{friend_id}")
        assert r.status_code == 200
        assert r.json() == {"following": True}
        track = (await friend.search_tracks("a", limit=1))[0]
        post_id = await friend.post(track=track, caption="this one is for the night bus")

        # It appears, hydrated, in my home timeline.
        async def home() -> list[dict[str, Any]]:
            return (await me.get("/api/feed")).json()["posts"]

        posts = await eventually(home, lambda ps: any(p["postId"] == post_id for p in ps))
        card = next(p for p in posts if p["postId"] == post_id)
        assert card["caption"] == "this one is for the night bus"
        assert card["track"]["id"] == track["id"]
        assert card["author"]["userId"] == friend_id
        assert card["likeCount"] == 0
        assert card["likedByMe"] is False

        # Like, unlike, like again: read-your-writes at once, exact counts after the flush.
        assert (await me.put(f"/api/likes/{post_id}")).json() == {"isLiked": True}
        assert (await me.delete(f"/api/likes/{post_id}")).json() == {"isLiked": False}
        assert (await me.put(f"/api/likes/{post_id}")).json() == {"isLiked": True}
        assert (await me.get(f"/api/likes/{post_id}")).json() == {"isLiked": True}

        async def like_count() -> int:
            return int((await me.get(f"/api/like-counts/{post_id}")).json()["count"])

        await eventually(like_count, lambda n: n == 1)
        await asyncio.sleep(1.0)  # later flushes must not move it
        assert await like_count() == 1

        # Comment.
        r = await me.post(f"/api/comments/posts/{post_id}", json={"text": "on repeat"})
        assert r.status_code == 201
        r = await me.get(f"/api/comments/posts/{post_id}")
        assert [c["text"] for c in r.json()["comments"]] == ["on repeat"]
        posts = await eventually(
            home,
            lambda ps: any(
                p["postId"] == post_id
                and p["commentCount"] == 1
                and p["likeCount"] == 1
                and p["likedByMe"]
                for p in ps
            ),
        )

        # Upload a profile image with the presigned POST, confirm, see it on my profile.
        r = await me.put(f"/api/users/{my_id}/image", json={"contentType": "image/png"})
        assert r.status_code == 200, r.text
        upload = r.json()
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
        sent = await outside.post(
            upload["url"], data=upload["fields"], files={"file": ("me.png", png, "image/png")}
        )
        assert sent.status_code == 204, sent.text
        r = await me.post(f"/api/users/{my_id}/image/confirm", json={"key": upload["key"]})
        assert r.status_code == 200, r.text
        profile = (await me.get(f"/api/users/{my_id}")).json()
        assert profile["profileImage"].endswith("/" + upload["key"].removeprefix("pending/"))
        assert (await outside.get(profile["profileImage"])).content == png

        # Dismiss a recommendation: it does not come back after a refresh.
        dismissed = next(r["userId"] for r in recs if r["userId"] != friend_id)
        assert (await me.post(f"/api/recommendations/{dismissed}/dismiss")).status_code == 204
        assert dismissed not in [r["userId"] for r in await recommendations()]
        await others[0].connect_spotify()  # a re-connection recomputes that person's matches
        await asyncio.sleep(3)
        assert dismissed not in [r["userId"] for r in await recommendations()]
        # Followed people are not recommended either.
        assert friend_id not in [r["userId"] for r in await recommendations()]

        # Sign out: the cookie no longer works, even if replayed.
        cookie = me.cookies["accessToken"]
        assert (await me.post("/api/auth/signout")).status_code == 200
        r = await me.get("/api/feed")
        assert r.status_code == 401
        replay = await httpx.AsyncClient(base_url=gateway).get(
            "/api/feed", headers={"Cookie": f"accessToken={cookie}"}
        )
        assert replay.status_code == 401
        assert replay.json() == {"errors": [{"msg": "The user is not authenticated."}]}
    finally:
        await me.aclose()
        await outside.aclose()
        for session in others:
            await session.close()


async def test_internal_routes_are_not_public(platform: local.Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url) as client:
        for path in (
            "/internal/users/cards",
            "/api/users/internal/users/cards",
            "/api/spotify/internal/connected/x",
        ):
            r = await client.post(path, json={"ids": []})
            assert r.status_code == 404, path


async def test_wrong_password_and_unknown_user_look_the_same(platform: local.Platform) -> None:
    session = await newcomer(platform, "careful", connect=False)
    try:
        with pytest.raises(ApiError) as wrong:
            await session.sign_in(login="careful", password="wrong!pass1")
        with pytest.raises(ApiError) as unknown:
            await session.sign_in(login="nobody-here", password="wrong!pass1")
        assert wrong.value.status == unknown.value.status == 400
        assert wrong.value.errors == unknown.value.errors
    finally:
        await session.close()
