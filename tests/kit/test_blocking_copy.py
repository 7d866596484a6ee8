"""A context's copy of blocks (`rhime.blocking`) against a real MongoDB-wire server: a block
delivered again after its person deleted their account writes nothing naming them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import bson
import pytest

from rhime import blocking, events
from rhime.kit import stores


@pytest.fixture
async def db(make_settings: Callable[..., Any], namespace: str) -> AsyncIterator[Any]:
    client: Any = stores.mongo(make_settings(), appname="blocking-test")
    yield client[f"{namespace}_blocking"]
    client.close()


def _blocked(blocker: str, blocked: str, version: int = 1) -> events.UserBlocked:
    return events.UserBlocked(
        id=f"user.blocked:{blocker}:{blocked}:{version}",
        blocker_id=blocker,
        blocked_id=blocked,
        version=version,
    )


async def _naming(db: Any, user_id: str) -> list[dict[str, Any]]:
    docs = [doc async for doc in db[blocking.COLLECTION].find({})]
    return [doc for doc in docs if user_id in repr(doc)]


async def test_a_block_delivered_again_after_the_deletion_writes_nothing(db: Any) -> None:
    gone, ana, bo = (str(bson.ObjectId()) for _ in range(3))
    await blocking.apply(db, _blocked(gone, ana))
    await blocking.apply(db, _blocked(bo, gone))
    assert await blocking.between(db, a=ana, b=gone)
    await blocking.forget(db, user_id=gone)
    assert await _naming(db, gone) == []
    # the same events again, as a redelivery would bring them
    await blocking.apply(db, _blocked(gone, ana))
    await blocking.apply(db, _blocked(bo, gone))
    assert await _naming(db, gone) == []
    assert not await blocking.between(db, a=ana, b=gone)
    # the others' own blocks still work
    await blocking.apply(db, _blocked(ana, bo))
    assert await blocking.between(db, a=bo, b=ana)
