"""Notifications as sentences, and the page and bell that show them."""

from __future__ import annotations

from typing import Any

import pytest

from rhime.web import notices, views
from tests.web import web_pages as wp

ANA = {"userId": "a", "firstName": "ana", "lastName": "lima"}
BO = {"userId": "b", "displayName": "Bo"}
NAMES = {"a": ANA, "b": BO}


def note(**fields: Any) -> dict[str, Any]:
    base = {
        "notificationId": "6b0dbe4e4f06c963558342ef",
        "kind": "like",
        "subject": {"type": "post", "id": "p1", "postId": "p1"},
        "count": 1,
        "actors": ["a"],
        "actorCount": 1,
        "at": "2024-01-01T00:00:00Z",
        "read": False,
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "text", "href"),
    [
        ({}, "Ana Lima liked your post", "/posts/p1/comments"),
        ({"actors": ["a", "b"], "actorCount": 2}, "Ana Lima and Bo liked your post", None),
        ({"actors": ["b", "a"], "actorCount": 13}, "Bo and 12 others liked your post", None),
        ({"actors": ["b", "a"], "actorCount": 2, "count": 5}, "Bo and Ana Lima liked", None),
        (
            {"subject": {"type": "comment", "id": "c1", "postId": "p1"}},
            "Ana Lima liked your comment",
            "/posts/p1/comments",
        ),
        ({"kind": "comment"}, "Ana Lima commented on your post", None),
        ({"kind": "follow", "subject": None}, "Ana Lima started following you", "/users/a"),
        ({"actors": ["zz"], "actorCount": 2}, "Someone and 1 other liked your post", None),
        (
            {"kind": "recommendation", "subject": None},
            "Ana Lima is a new recommendation for you",
            "/connect",
        ),
        (
            {"kind": "recommendation", "subject": None, "actors": ["b", "a"], "actorCount": 4},
            "Bo and 3 others are new recommendations for you",
            "/connect",
        ),
    ],
)
def test_a_notice_names_the_newest_and_counts_the_others(
    fields: dict[str, Any], text: str, href: str | None
) -> None:
    found = notices.notice(note(**fields), NAMES)
    assert found["text"].startswith(text)
    if href:
        assert found["href"] == href


def test_the_page_lists_notices_marks_new_ones_and_escapes() -> None:
    env = views.environment()
    shown = [
        notices.notice(note(), {"a": {"displayName": "<b>Ana</b>"}}),
        notices.notice(note(read=True, kind="follow", subject=None), NAMES),
    ]
    html = views.render(
        env,
        "notifications.html",
        {"viewer": wp.viewer(), "request_path": "/notifications", "notices": shown, "next": "n1"},
    )
    assert "&lt;b&gt;Ana&lt;/b&gt; liked your post" in html
    assert html.count('class="badge"') == 1
    assert "/notifications?before=n1" in html
    assert "bell.js" in html
    assert 'data-unread-count="/api/notifications/unread-count"' in html
    empty = views.render(
        env,
        "notifications.html",
        {"viewer": wp.viewer(), "request_path": "/notifications", "notices": [], "next": None},
    )
    assert "Nothing yet" in empty


def test_signed_out_pages_have_no_bell() -> None:
    html = views.render(
        views.environment(),
        "not_found.html",
        {"viewer": None, "request_path": "/nowhere", "status": 404, "messages": []},
    )
    assert "bell.js" not in html
