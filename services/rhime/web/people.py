"""Profiles from the user API, shaped for templates, fetched together when a page needs many."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from rhime.web import gateway


def profile(body: Any, *, user_id: str) -> dict[str, Any]:
    """A profile whatever the envelope (`{profile: ...}`, `{user: ...}` or bare)."""
    found: Any = body
    if isinstance(body, Mapping):
        for key in ("profile", "user"):
            if isinstance(body.get(key), Mapping):
                found = body[key]
                break
    data = dict(found) if isinstance(found, Mapping) else {}
    data.setdefault("userId", user_id)
    return data


def unknown(user_id: str) -> dict[str, Any]:
    return {"userId": user_id, "userName": "", "displayName": "Deleted user"}


async def one(api: gateway.Gateway, user_id: str) -> dict[str, Any]:
    """A profile, or 404 raised as ApiFailure."""
    return profile(await api.get(f"/api/users/{user_id}"), user_id=user_id)


async def many(api: gateway.Gateway, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Profiles by id; people who are gone show as "Deleted user" rather than failing a page."""
    ids = list(dict.fromkeys(user_ids))

    async def fetch(user_id: str) -> dict[str, Any]:
        body = await api.optional(f"/api/users/{user_id}")
        return profile(body, user_id=user_id) if body is not None else unknown(user_id)

    found = await asyncio.gather(*(fetch(i) for i in ids))
    return dict(zip(ids, found, strict=True))
