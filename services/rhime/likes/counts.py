"""Like counts: `counts` documents `{_id: item, count, updated_at, _applied}` written by the
batch updater (and repaired by like-reconcile), read by like-count, like and the feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter
from pymongo import IndexModel

from rhime.kit.kit import Resource

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "counts"
INDEXES = {COLLECTION: [IndexModel([("updated_at", 1)])]}
MAX_IDS = 100


async def get_many(kit: Kit, *, item_ids: Sequence[str]) -> dict[str, int]:
    """Counts of up to MAX_IDS items; a missing document counts 0."""
    wanted = list(dict.fromkeys(item_ids))[:MAX_IDS]
    found = {i: 0 for i in wanted}
    if wanted:
        cursor = kit.database[COLLECTION].find({"_id": {"$in": wanted}}, {"count": 1})
        async for doc in cursor.limit(len(wanted)):
            found[doc["_id"]] = max(0, int(doc.get("count", 0)))
    return found


@contextlib.asynccontextmanager
async def _open_writes(kit: Kit) -> AsyncIterator[Counter]:
    yield Counter(
        "rhime_likes_mongo_writes",
        "Write operations sent to MongoDB by the like workers",
        registry=kit.metrics.registry,
    )


# opened by the like workers, which count their writes (what coalescing saves)
WRITES = Resource("mongo-writes", open=_open_writes)


def mongo_writes(kit: Kit) -> Counter:
    """Write operations the like workers send to Mongo."""
    return kit.resource(WRITES)
