"""What a component asks another about one thing its own copy, kept from events, has not
heard of yet: a post shared or a person signed up a moment ago. An answer of None means no
such live thing, or that the owner cannot say (the caller's copy stays the authority)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rhime.kit import calls, errors

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger(__name__)


async def _ask(kit: Kit, service: str, path: str, *, item: str) -> Any:
    try:
        return await calls.call(kit, service, "POST", path, json={"ids": [item]}, timeout=2.0)
    except errors.ApiError:
        log.warning("could not ask %s about %s", service, item)
        return None


async def post_author(kit: Kit, *, post_id: str) -> str | None:
    """Who shared the live post (the post service's `/internal/posts/batch`)."""
    found = await _ask(kit, "post", "/internal/posts/batch", item=post_id)
    post = (found or {}).get("posts", {}).get(post_id)
    return None if post is None else str(post["userId"])


async def user_name(kit: Kit, *, user_id: str) -> str | None:
    """The live account's userName (auth's `/internal/auth/names`)."""
    found = await _ask(kit, "auth", "/internal/auth/names", item=user_id)
    name = (found or {}).get("names", {}).get(user_id)
    return None if name is None else str(name)
