"""One notification as a sentence and a link: "Ana and 12 others liked your post"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rhime.web import views

VERBS = {"like": "liked", "comment": "commented on"}


def notice(note: Mapping[str, Any], names: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    actors = [views.display_name(names.get(a)) for a in note.get("actors") or []]
    total = int(note.get("actorCount") or len(actors))
    if not actors:
        who = "Someone"
    elif total == 1:
        who = actors[0]
    elif total == 2 and len(actors) >= 2:
        who = f"{actors[0]} and {actors[1]}"
    else:
        rest = total - 1
        who = f"{actors[0]} and {rest} other{'s' if rest != 1 else ''}"
    kind = str(note.get("kind", ""))
    subject = note.get("subject") or {}
    if kind == "recommendation":
        news = "new recommendations" if total > 1 else "a new recommendation"
        text, href = f"{who} {'are' if total > 1 else 'is'} {news} for you", "/connect"
    elif kind == "follow":
        text, href = f"{who} started following you", f"/users/{(note.get('actors') or [''])[0]}"
    else:
        what = "your comment" if subject.get("type") == "comment" else "your post"
        text = f"{who} {VERBS.get(kind, 'acted on')} {what}"
        href = f"/posts/{subject.get('postId', '')}/comments"
    return {
        "id": note.get("notificationId", ""),
        "text": text,
        "href": href,
        "at": note.get("at"),
        "unread": not note.get("read", True),
        "kind": kind,
    }
