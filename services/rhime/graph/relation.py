"""A relation between two people stored as one versioned on/off document (follow edges and
blocks). The document is kept after the relation ends (`active: False`) so its `version` keeps
counting: odd versions start the relation, even ones end it, and each change stages its event
in the same write, guarded by the version it read (compare-and-set).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from rhime import events
from rhime.kit import outbox

ATTEMPTS = 50


class ConcurrentChange(Exception):
    """The relation kept changing under us; the caller may retry."""


async def transition(
    coll: Any,
    *,
    key: str,
    active: bool,
    event: Callable[[int], events.Event],
    fields: Mapping[str, Any],
    versions_field: str | None = None,
) -> int | None:
    """Move the document `key` to `active`; returns the new version, or None when it already
    was there. `event` makes the event of a version; `fields` are stored when the document is
    created; `versions_field`, if given, lists every new version (for whoever settles them)."""
    for _ in range(ATTEMPTS):
        doc = await coll.find_one({"_id": key}, {"active": 1, "version": 1})
        now = datetime.datetime.now(datetime.UTC)
        if doc is None:
            if not active:
                return None
            created = {"_id": key, **fields, "active": True, "version": 1, "changed_at": now}
            if versions_field is not None:
                created[versions_field] = [1]
            try:
                await coll.insert_one({**created, outbox.FIELD: outbox.staged(event(1))})
            except DuplicateKeyError:
                continue
            return 1
        if doc["active"] == active:
            return None
        version = int(doc["version"]) + 1
        pushed = outbox.push(event(version))["$push"]
        if versions_field is not None:
            pushed = {versions_field: version, **pushed}
        result = await coll.update_one(
            {"_id": key, "version": doc["version"]},
            {
                "$set": {"active": active, "version": version, "changed_at": now},
                "$push": pushed,
            },
        )
        if result.modified_count:
            return version
    raise ConcurrentChange(key)
