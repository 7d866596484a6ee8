"""Plain data shaped like the public API's answers, and an HTML checker, for the web tests."""

from __future__ import annotations

import html.parser
from typing import Any

from rhime.web import visit

ME = "a" * 24
OTHER = "b" * 24
POST = "c" * 24


def viewer(*, spotify: bool = True) -> visit.Viewer:
    return visit.Viewer(user_id=ME, user_name="ana.music", spotify=spotify)


def post(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "postId": POST,
        "createdAt": "2024-05-01T10:00:00Z",
        "caption": "On repeat all week",
        "track": {
            "id": "t1",
            "name": "Blue Monday",
            "artists": [{"id": "a1", "name": "New Order"}],
            "url": "https://open.spotify.com/track/t1",
            "image": "https://img.example/t1.jpg",
        },
        "author": {"userId": OTHER, "userName": "bo", "displayName": "Bo", "profileImage": None},
        "likeCount": 3,
        "commentCount": 1,
        "likedByMe": False,
    }
    value.update(overrides)
    return value


def card(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "user": {"userId": OTHER, "userName": "bo", "displayName": "Bo", "bio": "Synths."},
        "percent": 72,
        "counts": {"followers": 4, "following": 2},
        "breakdown": {"tracks": 0.5, "artists": 0.8, "genres": 0.9},
        "commonArtists": [{"id": "a1", "name": "New Order"}],
        "commonTracks": [{"id": "t1", "name": "Blue Monday"}],
        "commonGenres": [{"id": "synthpop", "name": "synthpop"}],
        "topGenres": ["synthpop", "post-punk"],
    }
    value.update(overrides)
    return value


class Page(html.parser.HTMLParser):
    """Collects what the accessibility checks need: controls, labels, ids, landmarks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "textarea", "select") and a.get("type") != "hidden":
            self.controls.append(a)

    def unlabelled(self) -> list[str]:
        return [
            str(c.get("id") or c.get("name"))
            for c in self.controls
            if c.get("id") not in self.labels
        ]

    def duplicate_ids(self) -> set[str]:
        return {i for i in self.ids if self.ids.count(i) > 1}
