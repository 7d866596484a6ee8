"""The notification component against real servers, fed events as the platform would publish
them (repeated, reordered and undone), read through its own API."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import bson
import bson.json_util
import httpx
import pytest

from rhime import events
from rhime.notification import app
from tests.support import auth_headers, eventually


def oid() -> str:
    return str(bson.ObjectId())


ANA, BO, CY, OWNER = oid(), oid(), oid(), oid()


class Notifications:
    def __init__(self, served: Any) -> None:
        self.url = served.url
        self.kit = served.app.state.kit
        self.bus = self.kit.require_bus()
        self.http = httpx.AsyncClient(base_url=served.url)

    async def send(self, *batch: events.Event) -> None:
        for event in batch:
            await self.bus.publish(event)

    async def page(self, user: str = OWNER, **params: Any) -> dict[str, Any]:
        r = await self.http.get("/api/notifications", params=params, headers=auth_headers(user))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def unread(self, user: str = OWNER) -> int:
        r = await self.http.get("/api/notifications/unread-count", headers=auth_headers(user))
        assert r.status_code == 200, r.text
        count: int = r.json()["count"]
        return count


@pytest.fixture
async def notes(make_settings: Callable[..., Any], serve: Any) -> AsyncIterator[Notifications]:
    settings = make_settings(app.Settings, component="notification", keep=10)
    found = Notifications(await serve(app.create(settings)))
    yield found
    await found.http.aclose()


def post(post_id: str, owner: str = OWNER) -> events.PostCreated:
    return events.PostCreated(
        id=f"post.created:{post_id}", post_id=post_id, user_id=owner, created_at=events.now()
    )


def like(
    item_id: str, user: str, seq: int, *, liked: bool = True, kind: str = "post", later: float = 0
) -> Any:
    return events.LikeToggled(
        occurred_at=events.now() + datetime.timedelta(seconds=later),
        id=f"like.toggled:{item_id}:{user}:{seq}",
        item_id=item_id,
        item_type=kind,
        user_id=user,
        liked=liked,
        seq=seq,
    )


def comment(comment_id: str, post_id: str, user: str) -> events.CommentCreated:
    return events.CommentCreated(
        id=f"comment.created:{comment_id}", comment_id=comment_id, post_id=post_id, user_id=user
    )


def kinds(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(n["kind"], n["count"]) for n in page["notifications"]]


async def test_likes_group_per_post_and_a_storm_is_one(notes: Notifications) -> None:
    p = oid()
    await notes.send(post(p))
    await notes.send(like(p, ANA, 1), like(p, ANA, 2, liked=False), like(p, ANA, 3))
    await notes.send(like(p, ANA, 3), like(p, ANA, 1))  # redelivered and late
    await notes.send(
        like(p, BO, 1), like(p, CY, 1, later=1), like(p, OWNER, 1)
    )  # never to yourself
    page = await eventually(lambda: _has(notes, lambda n: n["actorCount"] == 3))
    [note] = page["notifications"]
    assert note["kind"] == "like"
    assert note["count"] == 3
    assert note["actors"][0] == CY  # the newest first
    assert set(note["actors"]) == {ANA, BO, CY}
    assert note["subject"] == {"type": "post", "id": p, "postId": p}
    assert note["read"] is False
    assert await notes.unread() == 1
    assert (await notes.page(user=ANA))["notifications"] == []


async def test_undoing_every_cause_removes_the_notification(notes: Notifications) -> None:
    p = oid()
    await notes.send(post(p), like(p, ANA, 1))
    await eventually(lambda: _has(notes, lambda n: n["count"] == 1))
    await notes.send(like(p, ANA, 2, liked=False))

    async def gone() -> None:
        assert (await notes.page())["notifications"] == []
        assert await notes.unread() == 0

    await eventually(gone)
    await notes.send(like(p, ANA, 1))  # a late older like cannot bring it back
    await notes.send(like(p, BO, 1))
    page = await eventually(lambda: _has(notes, lambda n: n["actors"] == [BO]))
    assert page["notifications"][0]["count"] == 1


async def test_comments_and_follows_and_their_undoing(notes: Notifications) -> None:
    p, c1, c2 = oid(), oid(), oid()
    await notes.send(post(p), comment(c1, p, ANA), comment(c2, p, ANA), comment(oid(), p, OWNER))
    await notes.send(
        events.UserFollowed(
            id=f"user.followed:{BO}:{OWNER}:1", follower_id=BO, followee_id=OWNER, version=1
        )
    )

    async def both() -> dict[str, Any]:
        page = await notes.page()
        assert sorted(kinds(page)) == [("comment", 2), ("follow", 1)], page
        return page

    page = await eventually(both)
    by_kind = {n["kind"]: n for n in page["notifications"]}
    assert by_kind["comment"]["actors"] == [ANA]  # one person, two comments
    await notes.send(
        events.CommentDeleted(id=f"comment.deleted:{c1}", comment_id=c1, post_id=p, user_id=ANA),
        events.UserUnfollowed(
            id=f"user.unfollowed:{BO}:{OWNER}:2", follower_id=BO, followee_id=OWNER, version=2
        ),
    )

    async def undone() -> None:
        assert kinds(await notes.page()) == [("comment", 1)]

    await eventually(undone)


async def test_deleting_a_post_takes_its_notifications(notes: Notifications) -> None:
    p, c = oid(), oid()
    await notes.send(post(p), comment(c, p, OWNER), like(c, ANA, 1, kind="comment"))
    await notes.send(like(p, BO, 1))
    await eventually(lambda: _has(notes, lambda n: n["subject"]["type"] == "comment"))
    await notes.send(events.PostDeleted(id=f"post.deleted:{p}", post_id=p, user_id=OWNER))

    async def gone() -> None:
        assert (await notes.page())["notifications"] == []

    await eventually(gone)
    await notes.send(like(p, CY, 1))  # a late like on the deleted post notifies nobody
    await notes.send(post(q := oid()), like(q, CY, 1))
    page = await eventually(lambda: _has(notes, lambda n: n["subject"]["id"] == q))
    assert [n["subject"]["id"] for n in page["notifications"]] == [q]


async def test_pages_reading_and_the_newest_kept(notes: Notifications) -> None:
    posts = [oid() for _ in range(12)]
    for p in posts:
        # one at a time: a like can overtake its post's event and be retried later, which
        # would change which notifications are the newest
        await notes.send(post(p), like(p, ANA, 1))
        await eventually(lambda p=p: _has(notes, lambda n: n["subject"]["id"] == p))
    await eventually(lambda: _count(notes, 10))  # keep=10: the oldest two fell out
    first = await notes.page(limit=4)
    assert len(first["notifications"]) == 4
    assert first["next"]
    rest = await notes.page(before=first["next"], limit=50)
    everything = first["notifications"] + rest["notifications"]
    ids = [n["notificationId"] for n in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 10
    assert {n["subject"]["id"] for n in everything} == set(posts[2:])

    r = await notes.http.get("/api/notifications/unread-count", headers=auth_headers(OWNER))
    assert r.json() == {"count": 10}
    tag = r.headers["etag"]
    again = await notes.http.get(
        "/api/notifications/unread-count", headers={**auth_headers(OWNER), "if-none-match": tag}
    )
    assert again.status_code == 304

    r = await notes.http.post(
        "/api/notifications/read", json={"upTo": ids[3]}, headers=auth_headers(OWNER)
    )
    assert r.json() == {"count": 3}
    changed = await notes.http.get(
        "/api/notifications/unread-count", headers={**auth_headers(OWNER), "if-none-match": tag}
    )
    assert changed.status_code == 200
    assert changed.json() == {"count": 3}
    # the marker never moves back
    await notes.http.post(
        "/api/notifications/read", json={"upTo": ids[9]}, headers=auth_headers(OWNER)
    )
    assert await notes.unread() == 3
    page = await notes.page(limit=5)
    assert [n["read"] for n in page["notifications"]] == [False, False, False, True, True]
    r = await notes.http.post("/api/notifications/read", json={}, headers=auth_headers(OWNER))
    assert r.json() == {"count": 0}


async def test_bad_input_is_a_clear_400(notes: Notifications) -> None:
    h = auth_headers(OWNER)
    r = await notes.http.get("/api/notifications", params={"before": "nope"}, headers=h)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "before"
    r = await notes.http.post("/api/notifications/read", json={"upTo": "x"}, headers=h)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "upTo"
    r = await notes.http.post("/api/notifications/read", json={"what": 1}, headers=h)
    assert r.status_code == 400
    r = await notes.http.get("/api/notifications/unread-count")
    assert r.status_code == 401


async def _has(notes: Notifications, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    page = await notes.page()
    assert any(ok(n) for n in page["notifications"]), page
    return page


async def _count(notes: Notifications, n: int) -> None:
    page = await notes.page(limit=50)
    assert len(page["notifications"]) == n, page


async def _naming(notes: Notifications, user_id: str) -> list[str]:
    """The documents of the notification database that name `user_id` anywhere."""
    db = notes.kit.database
    found = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            if user_id in bson.json_util.dumps(doc):
                found.append(f"{name} {doc['_id']}")
    return found


async def test_a_deleted_account_leaves_no_trace_whatever_the_order(notes: Notifications) -> None:
    """ANA deletes their account; the unlike, comment deletion and unfollow that deletion
    sets off arrive before and after `user.deleted` (and again): nothing names ANA at the
    end, the counts of the notifications ANA was part of are corrected, and ANA's own
    inbox goes."""
    p, mine, c = oid(), oid(), oid()
    await notes.send(post(p), post(mine, owner=ANA), like(p, ANA, 1), like(p, BO, 1))
    await notes.send(comment(c, p, ANA), like(mine, BO, 1))
    await notes.send(
        events.UserFollowed(
            id=f"user.followed:{ANA}:{OWNER}:1", follower_id=ANA, followee_id=OWNER, version=1
        )
    )
    await eventually(lambda: _count(notes, 3))
    await eventually(lambda: _has(notes, lambda n: n["kind"] == "like" and n["count"] == 2))

    async def ana_told() -> None:
        assert (await notes.page(user=ANA))["notifications"]

    await eventually(ana_told)
    unfollow = events.UserUnfollowed(
        id=f"user.unfollowed:{ANA}:{OWNER}:2", follower_id=ANA, followee_id=OWNER, version=2
    )
    await notes.send(unfollow)  # before
    await notes.send(events.UserDeleted(id=f"user.deleted:{ANA}", user_id=ANA))
    await notes.send(
        events.LikeToggled(
            id=f"like.toggled:forget:{p}:{ANA}",
            item_id=p,
            item_type="post",
            user_id=ANA,
            liked=False,
            seq=5,
            forget=True,
        ),
        events.CommentDeleted(id=f"comment.deleted:{c}", comment_id=c, post_id=p, user_id=ANA),
        events.PostDeleted(id=f"post.deleted:{mine}", post_id=mine, user_id=ANA),
        unfollow,  # and again
        like(p, ANA, 1),  # a late one from before
    )

    async def settled() -> None:
        page = await notes.page()
        assert [(n["kind"], n["count"], n["actors"]) for n in page["notifications"]] == [
            ("like", 1, [BO])
        ], page
        assert await _naming(notes, ANA) == []

    await eventually(settled)
    assert (await notes.page(user=ANA))["notifications"] == []


def recommended(user: str, other: str, week: str = "2026-W49") -> events.UserRecommended:
    return events.UserRecommended(
        id=f"user.recommended:{user}:{other}", user_id=user, other_id=other, week=week
    )


async def test_new_recommendations_group_per_week_once_per_person(notes: Notifications) -> None:
    """One cause per person new among OWNER's recommendations, grouped per refresh week;
    repeats change nothing, and never to yourself."""
    await notes.send(recommended(OWNER, ANA), recommended(OWNER, BO), recommended(OWNER, OWNER))
    await notes.send(recommended(OWNER, ANA))  # redelivered
    page = await eventually(lambda: _has(notes, lambda n: n["actorCount"] == 2))
    [note] = page["notifications"]
    assert note["kind"] == "recommendation"
    assert note["subject"] is None
    assert set(note["actors"]) == {ANA, BO}
    assert note["count"] == 2
    assert await notes.unread() == 1
    await notes.send(recommended(OWNER, CY, week="2026-W50"))
    page = await eventually(lambda: _has(notes, lambda n: n["actors"] == [CY]))
    assert kinds(page) == [("recommendation", 1), ("recommendation", 2)]
    assert (await notes.page(user=ANA))["notifications"] == []


async def test_never_a_recommendation_between_people_apart(notes: Notifications) -> None:
    """A block withdraws what was announced of either to the other, and a recommendation of a
    blocked pair arriving later tells nobody; lifting the block announces nothing again."""
    await notes.send(recommended(OWNER, ANA), recommended(OWNER, BO), recommended(ANA, OWNER))
    await eventually(lambda: _has(notes, lambda n: n["actorCount"] == 2))
    block = events.UserBlocked(
        id=f"user.blocked:{ANA}:{OWNER}:1", blocker_id=ANA, blocked_id=OWNER, version=1
    )
    await notes.send(block)

    async def withdrawn() -> None:
        page = await notes.page()
        assert [(n["kind"], n["actors"]) for n in page["notifications"]] == [
            ("recommendation", [BO])
        ]
        assert (await notes.page(user=ANA))["notifications"] == []

    await eventually(withdrawn)
    await notes.send(recommended(OWNER, ANA, week="2026-W50"), recommended(OWNER, CY))
    await eventually(lambda: _has(notes, lambda n: n["actorCount"] == 2))
    page = await notes.page()
    assert [sorted(n["actors"]) for n in page["notifications"]] == [sorted([BO, CY])]
