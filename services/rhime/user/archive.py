"""A person's data export: one JSON archive of everything Rhime holds about them, gathered
from each component's internal export route (each answers for its own store, and only to
components) next to the profile kept here. Tokens and password hashes are never in it."""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING, Any

from rhime.kit import calls

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

# (component, internal path) of each part; every part is a JSON object whose keys go into
# the archive
PARTS = (
    ("auth", "/internal/auth/export/{}"),
    ("post", "/internal/posts/export/{}"),
    ("comment", "/internal/comments/export/{}"),
    ("like", "/internal/likes/export/{}"),
    ("user-graph", "/internal/graph/export/{}"),
    ("spotify", "/internal/spotify/export/{}"),
    ("notification", "/internal/notifications/export/{}"),
)


async def gather(kit: Kit, *, user_id: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The archive; any part that cannot be had fails the whole (a partial export would
    look complete)."""
    answers = await asyncio.gather(
        *(
            calls.call(kit, component, "GET", path.format(user_id), timeout=15.0)
            for component, path in PARTS
        )
    )
    account = answers[0]
    archive: dict[str, Any] = {
        "exportedAt": datetime.datetime.now(datetime.UTC).isoformat(),
        "account": account,
        "profile": profile,
    }
    for answer in answers[1:]:
        archive.update(answer)
    return archive
