"""What other components ask the auth service about one person, when their own copy (kept
from `user.created`) has not heard of them yet: a person who signed up a moment ago."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rhime.kit import calls, errors

if TYPE_CHECKING:
    from rhime.kit.app import Kit

log = logging.getLogger(__name__)


async def user_name(kit: Kit, *, user_id: str) -> str | None:
    """The live account's userName, or None when there is no such account (or the auth
    service cannot say: the caller's copy stays the authority)."""
    try:
        found = await calls.call(
            kit, "auth", "POST", "/internal/auth/names", json={"ids": [user_id]}, timeout=2.0
        )
    except errors.ApiError:
        log.warning("could not ask the auth service about user %s", user_id)
        return None
    name = found.get("names", {}).get(user_id)
    return None if name is None else str(name)
