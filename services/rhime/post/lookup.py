"""What other components ask the post service about one post, when their own copy (kept
from post events) has not heard of it yet: a post shared a moment ago."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rhime.kit import calls, errors

if TYPE_CHECKING:
    from rhime.kit.app import Kit

log = logging.getLogger(__name__)


async def author(kit: Kit, *, post_id: str) -> str | None:
    """Who shared the live post, or None when there is no such post (or the post service
    cannot say: the caller's copy stays the authority)."""
    try:
        found = await calls.call(
            kit, "post", "POST", "/internal/posts/batch", json={"ids": [post_id]}, timeout=2.0
        )
    except errors.ApiError:
        log.warning("could not ask the post service about post %s", post_id)
        return None
    post = found.get("posts", {}).get(post_id)
    return None if post is None else str(post["userId"])
