"""A person's inbox: one document listing their newest notifications (at most `keep`).

Each entry names a group with its sort `key`, the group revision it reflects and whether it
shows. Revisions only move forward, so concurrent or late syncs of one group cannot undo a
newer one; hidden entries stay (as tombstones) until trimmed. Reads are one `_id` lookup,
which is what the unread count — asked by every open page — must cost."""

from __future__ import annotations

import contextlib
import datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from rhime.notification import groups

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "inboxes"
MAX_ACTORS = 3  # named people per notification ("Ana, Bo and 12 others")


async def _ensure(kit: Kit, recipient: str) -> None:
    with contextlib.suppress(DuplicateKeyError):
        await kit.database[COLLECTION].update_one(
            {"_id": recipient}, {"$setOnInsert": {"e": {}, "read": ""}}, upsert=True
        )


async def sync(kit: Kit, *, state: groups.State, keep: int) -> None:
    """Make the recipient's entry for a group reflect `state` (idempotent)."""
    await _ensure(kit, state.recipient)
    path = f"e.{state.group_id}"
    result = await kit.database[COLLECTION].update_one(
        {
            "_id": state.recipient,
            "$or": [{f"{path}.r": {"$lt": state.rev}}, {path: {"$exists": False}}],
        },
        {"$set": {path: {"k": state.key, "r": state.rev, "on": state.active}}},
    )
    if result.modified_count:
        await _trim(kit, recipient=state.recipient, keep=keep)


async def _trim(kit: Kit, *, recipient: str, keep: int) -> None:
    doc = await kit.database[COLLECTION].find_one({"_id": recipient}, {"e": 1})
    entries: dict[str, Any] = (doc or {}).get("e", {})
    if len(entries) <= keep:
        return
    oldest = sorted(entries.items(), key=lambda ge: str(ge[1]["k"]))[: len(entries) - keep]
    # Only if none of them changed since read; otherwise the next sync trims.
    result = await kit.database[COLLECTION].update_one(
        {"_id": recipient, **{f"e.{g}.r": entry["r"] for g, entry in oldest}},
        {"$unset": {f"e.{g}": "" for g, _ in oldest}},
    )
    if result.modified_count:
        for group_id, entry in oldest:
            await groups.forget(kit, group_id=group_id, key=entry["k"])


async def _shown(kit: Kit, recipient: str) -> tuple[list[tuple[str, str]], str]:
    """(key, group id) of the entries that show, newest first, and the read marker."""
    doc = await kit.database[COLLECTION].find_one({"_id": recipient})
    if doc is None:
        return [], ""
    shown = sorted(((e["k"], g) for g, e in doc["e"].items() if e["on"]), reverse=True)
    return shown, str(doc.get("read", ""))


async def unread(kit: Kit, *, recipient: str) -> tuple[int, str]:
    """How many showing notifications are newer than the read marker, and the newest key."""
    shown, read = await _shown(kit, recipient)
    return sum(1 for key, _ in shown if key > read), shown[0][0] if shown else ""


async def mark_read(kit: Kit, *, recipient: str, up_to: str | None) -> None:
    """Everything up to `up_to` (all when None) is read; the marker never moves back nor
    past the newest notification, so later ones arrive unread."""
    shown, _ = await _shown(kit, recipient)
    if not shown:
        return
    newest = shown[0][0]
    marker = newest if up_to is None else min(up_to, newest)
    await kit.database[COLLECTION].update_one(
        {"_id": recipient, "read": {"$lt": marker}}, {"$set": {"read": marker}}
    )


async def page(kit: Kit, *, recipient: str, before: str | None, limit: int) -> dict[str, Any]:
    shown, read = await _shown(kit, recipient)
    chosen = [(key, g) for key, g in shown if before is None or key < before][:limit]
    docs = await groups.load(kit, group_ids=[g for _, g in chosen])
    items = [render(docs[g], read=read) for _, g in chosen if g in docs]
    return {
        "notifications": items,
        "next": chosen[-1][0] if len(chosen) == limit else None,
    }


def render(doc: dict[str, Any], *, read: str) -> dict[str, Any]:
    """A group as the API shows it: who (the newest few), how many, on what."""
    active = sorted(
        (c for c in doc["actors"].values() if c.get("on")), key=lambda c: c["t"], reverse=True
    )
    people = list(dict.fromkeys(c["a"] for c in active))
    return {
        "notificationId": doc["key"],
        "kind": doc["kind"],
        "subject": doc.get("subject"),
        "count": int(doc["count"]),
        "actors": people[:MAX_ACTORS],
        "actorCount": len(people),
        "at": _iso(doc["at"]),
        "read": doc["key"] <= read,
    }


def _iso(when: datetime.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
