"""Notifications through the gateway, on the platform as `make run` starts it: people follow,
like and comment, and the one they did it to is told, once per cause, until it is undone."""

from __future__ import annotations

from typing import Any

import pytest

from rhime.apiclient import Session
from rhime.runtime import local
from tests.journey.test_journey import eventually, newcomer


async def notes(session: Session) -> list[dict[str, Any]]:
    body = await session.request("GET", "/api/notifications")
    found: list[dict[str, Any]] = body["notifications"]
    return found


@pytest.mark.slow
async def test_people_are_told_what_others_did(platform: local.Platform) -> None:
    owner, ana, bo = [await newcomer(platform, n) for n in ("notifowner", "notifana", "notifbo")]
    try:
        [track] = await owner.search_tracks("a", limit=1)
        post_id = await owner.post(track=track, caption="listen")
        await owner.comment(post_id, "my own comment")  # never to myself
        await ana.follow(owner.user_id)
        comment_id = await ana.comment(post_id, "lovely")
        for _ in range(3):  # a like storm is one notification
            await ana.like(post_id)
            await ana.unlike(post_id)
        await ana.like(post_id)
        await bo.like(post_id)
        await owner.like(post_id)

        def settled(found: list[dict[str, Any]]) -> bool:
            kinds = {n["kind"]: n for n in found}
            return (
                set(kinds) == {"like", "comment", "follow"}
                and kinds["like"]["actorCount"] == 2
                and kinds["comment"]["count"] == 1
            )

        found = await eventually(lambda: notes(owner), settled)
        likes = next(n for n in found if n["kind"] == "like")
        assert set(likes["actors"]) == {ana.user_id, bo.user_id}
        assert likes["count"] == 2
        assert likes["subject"] == {"type": "post", "id": post_id, "postId": post_id}
        assert await notes(ana) == []

        r = await owner.http.get("/api/notifications/unread-count")
        assert r.json() == {"count": 3}
        again = await owner.http.get(
            "/api/notifications/unread-count", headers={"if-none-match": r.headers["etag"]}
        )
        assert again.status_code == 304
        assert await owner.request("POST", "/api/notifications/read", json={}) == {"count": 0}

        # Undone causes take their notification with them.
        await ana.unfollow(owner.user_id)
        await ana.request("DELETE", f"/api/comments/{comment_id}")
        await eventually(lambda: notes(owner), lambda found: {n["kind"] for n in found} == {"like"})
        r = await owner.http.get("/api/notifications", params={"before": "x"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "before"
    finally:
        for session in (owner, ana, bo):
            await session.close()
