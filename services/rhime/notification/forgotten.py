"""People who deleted their account, and removing what the notification context holds of
them: their inbox, the groups addressed to them, their part in others' groups (as liker,
commenter or follower, with the counts corrected), the follows and items naming them.

Deleting an account sets off more events (unlikes, unfollows, deleted posts and comments)
that arrive here before or after `user.deleted` and would write the person back (an undone
cause is remembered with its actor). So the person is remembered as gone, and every handler
of an event naming someone removes their traces again once it has written, if they are
gone: a write that lands after the removal is removed by its own handler. "Gone" is a keyed
digest of the id (HMAC with the internal secret), which names nobody to whoever reads the
store and can be checked only by the components.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rhime.notification import causes, groups, inbox, items

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

COLLECTION = "forgotten"


def _digest(kit: Kit, user_id: str) -> str:
    secret = kit.settings.internal_secret.get_secret_value().encode()
    return hmac.new(secret, f"forgotten:{user_id}".encode(), hashlib.sha256).hexdigest()


async def forget(kit: Kit, *, user_id: str, limits: causes.Limits) -> None:
    """`user.deleted`: remember them as gone, then remove their traces (safe to repeat)."""
    await kit.database[COLLECTION].update_one(
        {"_id": _digest(kit, user_id)},
        {"$setOnInsert": {"at": datetime.datetime.now(datetime.UTC)}},
        upsert=True,
    )
    await remove(kit, user_id=user_id, limits=limits)


async def recheck(kit: Kit, *, people: Iterable[str], limits: causes.Limits) -> None:
    """After a handler's write: remove again the traces of whoever of `people` is gone."""
    for user_id in dict.fromkeys(people):
        if await kit.database[COLLECTION].find_one({"_id": _digest(kit, user_id)}, {"_id": 1}):
            await remove(kit, user_id=user_id, limits=limits)


async def remove(kit: Kit, *, user_id: str, limits: causes.Limits) -> None:
    db: Any = kit.database
    await db[inbox.COLLECTION].delete_one({"_id": user_id})
    await db[groups.COLLECTION].delete_many({"recipient": user_id})
    quoted = re.escape(user_id)
    await db[causes.FOLLOWS].delete_many({"_id": {"$regex": f"^{quoted}:"}})
    await db[causes.FOLLOWS].delete_many({"group": {"$regex": f"^follow:{quoted}:"}})
    await db[items.COLLECTION].update_many({"owner": user_id}, {"$set": {"owner": ""}})
    async for doc in db[groups.COLLECTION].find({groups.ACTORS: user_id}, {"_id": 1}):
        state = await groups.drop_actor(kit, group_id=doc["_id"], actor=user_id)
        if state is not None:
            await inbox.sync(kit, state=state, keep=limits.keep)
