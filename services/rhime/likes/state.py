"""Persisted like state: one document per (item, person), `_id = "{item}:{user}"`, holding
`liked` and the `seq` of the action that set it. An action is applied only when its seq is
higher than the stored one, so duplicates and late deliveries cannot flip state wrongly.
A `forget` action (its person deleted their account) removes the document instead."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pymongo import DeleteOne, IndexModel

from rhime import events
from rhime.likes import counts, guarded

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "likes"
INDEXES = [
    IndexModel([("item_id", 1), ("liked", 1)]),
    IndexModel([("user_id", 1)]),  # a person's likes, when they delete their account
]


def key(item_id: str, user_id: str) -> str:
    return f"{item_id}:{user_id}"


def latest(batch: Iterable[events.LikeToggled]) -> list[events.LikeToggled]:
    """The newest action per (item, person): all that matters of a batch."""
    newest: dict[str, events.LikeToggled] = {}
    for event in batch:
        k = key(event.item_id, event.user_id)
        if k not in newest or event.seq > newest[k].seq:
            newest[k] = event
    return list(newest.values())


async def apply(kit: Kit, batch: Sequence[events.LikeToggled]) -> int:
    """Apply the newest action per pair in bulk, each guarded by seq; returns the number of
    write operations sent. A stale action (stored seq is higher) changes nothing."""
    now = datetime.datetime.now(datetime.UTC)
    writes = []
    newest = latest(batch)
    forgets = [
        DeleteOne({"_id": key(e.item_id, e.user_id), "seq": {"$lt": e.seq}})
        for e in newest
        if e.forget
    ]
    if forgets:
        await kit.database[COLLECTION].bulk_write(forgets, ordered=False)
    for e in newest:
        if e.forget:
            continue
        fields = {
            "item_id": e.item_id,
            "user_id": e.user_id,
            "item_type": e.item_type,
            "liked": e.liked,
            "seq": e.seq,
            "updated_at": now,
        }
        writes.append(
            guarded.Write(
                doc_id=key(e.item_id, e.user_id),
                guard={"seq": {"$lt": e.seq}},
                update={"$set": fields},
                new=fields,
            )
        )
    sent = await guarded.apply(kit.database[COLLECTION], writes) + len(forgets)
    counts.mongo_writes(kit).inc(sent)
    return sent


async def of_user(kit: Kit, *, user_id: str) -> list[tuple[str, str]]:
    """(item, type) of every persisted like state of the person, liked or not."""
    cursor = kit.database[COLLECTION].find({"user_id": user_id}, {"item_id": 1, "item_type": 1})
    return [(d["item_id"], d["item_type"]) async for d in cursor]


async def read(kit: Kit, *, user_id: str, item_ids: Sequence[str]) -> dict[str, tuple[int, bool]]:
    """(seq, liked) of this person's persisted state for each item that has one."""
    keys = [key(i, user_id) for i in item_ids]
    cursor = kit.database[COLLECTION].find(
        {"_id": {"$in": keys}}, {"item_id": 1, "seq": 1, "liked": 1}
    )
    return {d["item_id"]: (int(d["seq"]), bool(d["liked"])) async for d in cursor.limit(len(keys))}


async def export(kit: Kit, *, user_id: str) -> list[dict[str, str]]:
    """What the person likes (persisted state), for their data export."""
    cursor = kit.database[COLLECTION].find(
        {"user_id": user_id, "liked": True}, {"item_id": 1, "item_type": 1, "updated_at": 1}
    )
    return [
        {
            "itemId": d["item_id"],
            "itemType": d["item_type"],
            "likedAt": d["updated_at"].isoformat() if d.get("updated_at") else "",
        }
        async for d in cursor
    ]
