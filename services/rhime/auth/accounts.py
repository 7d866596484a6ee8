"""Accounts: sign up and sign in against the `users` collection of the auth database.

Unique indexes on the lowercased email and userName make duplicates impossible even when two
sign-ups race; the checks before the insert only choose the friendlier message.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from rhime import events
from rhime.auth import attempts, passwords
from rhime.kit import access_tokens, errors, outbox
from rhime.kit.kit import Kit

log = logging.getLogger("rhime.auth")
USERS = "users"
# An account being deleted is gone for sign-in while its `user.deleted` waits in the outbox.
LIVE = {outbox.PURGE: {"$ne": True}}
# The order of the last Spotify connect or disconnect applied (events.spotify_seq).
SPOTIFY_SEQ = "spotifySeq"
INDEXES = {
    USERS: [
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        IndexModel([("user_name_key", ASCENDING)], unique=True, name="user_name_unique"),
    ]
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Account:
    user_id: str
    user_name: str
    email: str
    spotify: bool


def _account(doc: dict[str, Any]) -> Account:
    return Account(
        user_id=doc["_id"],
        user_name=doc["user_name"],
        email=doc["email"],
        spotify=bool(doc.get("spotify", False)),
    )


async def _taken(kit: Kit, *, user_name: str, email: str) -> None:
    users = kit.database[USERS]
    if await users.find_one({"email": email}, {"_id": 1}):
        raise errors.bad_request("The email already exists", field="email")
    if await users.find_one({"user_name_key": user_name.lower()}, {"_id": 1}):
        raise errors.bad_request("The userName already exists", field="userName")


async def _hash(hasher: passwords.Hasher, password: str) -> str:
    try:
        return await hasher.hash(password)
    except passwords.Busy:
        raise busy() from None


async def sign_up(
    kit: Kit, *, hasher: passwords.Hasher, user_name: str, email: str, password: str
) -> Account:
    """Create the account and publish `user.created` (staged in the same insert)."""
    await _taken(kit, user_name=user_name, email=email)
    user_id = str(ObjectId())
    event = events.UserCreated(id=f"user.created:{user_id}", user_id=user_id, user_name=user_name)
    doc = {
        "_id": user_id,
        "user_name": user_name,
        "user_name_key": user_name.lower(),
        "email": email,
        "password": await _hash(hasher, password),
        "spotify": False,
        "created_at": datetime.datetime.now(datetime.UTC),
        outbox.FIELD: outbox.staged(event),
    }
    try:
        await kit.database[USERS].insert_one(doc)
    except DuplicateKeyError:
        # a racing sign-up won; its document is there now (not every server names the index)
        await _taken(kit, user_name=user_name, email=email)
        raise errors.bad_request("The userName already exists", field="userName") from None
    try:
        await outbox.flush(kit, collection=USERS, doc_id=user_id)
    except Exception:
        # stored with its event: the outbox relay publishes it
        log.warning("user.created for %s left to the outbox relay", user_id, exc_info=True)
    return _account(doc)


BUSY = "Too many sign-ins at once; try again in a moment."
WRONG_CREDENTIALS = "The userName, email or password is incorrect."


def busy() -> errors.ApiError:
    return errors.ApiError(503, BUSY, headers={"Retry-After": "1"})


async def sign_in(
    kit: Kit,
    *,
    hasher: passwords.Hasher,
    login: str,
    password: str,
    client: str,
    limits: attempts.Limits,
) -> Account:
    """By userName or email. Failed attempts are limited per (login, client) and per client
    within a window (429 past either), counted before the password is checked."""
    login = login.strip().lower()
    reservation = await attempts.reserve(kit, login=login, client=client, limits=limits)
    field = "email" if "@" in login else "user_name_key"
    doc = await kit.database[USERS].find_one({field: login, **LIVE})
    try:
        matches = await hasher.verify(doc["password"] if doc else None, password)
    except passwords.Busy:
        await attempts.unchecked(kit, reservation)
        raise busy() from None
    if not matches:
        raise errors.bad_request(WRONG_CREDENTIALS)
    assert doc is not None
    await attempts.succeeded(kit, reservation)
    if hasher.needs_rehash(doc["password"]):
        try:
            hashed = await hasher.hash(password)
        except passwords.Busy:
            log.info("rehashing the password of %s left to a quieter sign-in", doc["_id"])
        else:
            await kit.database[USERS].update_one(
                {"_id": doc["_id"]}, {"$set": {"password": hashed}}
            )
    return _account(doc)


async def change_password(
    kit: Kit,
    *,
    hasher: passwords.Hasher,
    user_id: str,
    current: str,
    new: str,
    client: str,
    limits: attempts.Limits,
    ttl: int,
) -> Account:
    """Check the current password as a sign-in by userName does (its failures count toward
    the same limits, so this route is no way around them), store the new one, and sign out
    every token issued so far: the caller gets a fresh one afterwards."""
    doc = await kit.database[USERS].find_one({"_id": user_id})
    if doc is None:
        raise errors.unauthenticated()
    await _confirm(
        kit,
        hasher=hasher,
        doc=doc,
        password=current,
        client=client,
        limits=limits,
        wrong=errors.bad_request(WRONG_CREDENTIALS),
    )
    hashed = await _hash(hasher, new)
    # Signed out first: a crash before the password is stored leaves every session signed
    # out and the old password working, never the new password with old sessions alive.
    await sign_out(kit, user_id=user_id, ttl=ttl)
    await kit.database[USERS].update_one(
        {"_id": user_id},
        {"$set": {"password": hashed, "password_changed_at": datetime.datetime.now(datetime.UTC)}},
    )
    return _account(doc)


async def get(kit: Kit, *, user_id: str) -> Account:
    doc = await kit.database[USERS].find_one({"_id": user_id, **LIVE}, {"password": 0})
    if doc is None:
        raise errors.unauthenticated()
    return _account(doc)


async def names(kit: Kit, *, ids: list[str]) -> dict[str, str]:
    """The userName of each live account among `ids`; unknown and deleted ones are left out."""
    cursor = kit.database[USERS].find(
        {"_id": {"$in": list(dict.fromkeys(ids))}, **LIVE}, {"user_name": 1}
    )
    return {doc["_id"]: doc["user_name"] async for doc in cursor}


async def delete(
    kit: Kit,
    *,
    hasher: passwords.Hasher,
    user_id: str,
    password: str,
    client: str,
    limits: attempts.Limits,
    ttl: int,
) -> None:
    """Delete the account after checking its password (limited like sign-ins): every token
    is refused from now on, and the document is marked purged with `user.deleted` in one
    write; the outbox publishes the event, then removes the document, which frees the
    userName and email for anyone. Every component removes what it holds on that event."""
    users = kit.database[USERS]
    doc = await users.find_one({"_id": user_id, **LIVE}, {"password": 1, "user_name_key": 1})
    if doc is None:
        raise errors.unauthenticated()
    await _confirm(
        kit,
        hasher=hasher,
        doc=doc,
        password=password,
        client=client,
        limits=limits,
        wrong=errors.bad_request("The password is incorrect.", field="password"),
    )
    await sign_out(kit, user_id=user_id, ttl=ttl)
    event = events.UserDeleted(id=f"user.deleted:{user_id}", user_id=user_id)
    await users.update_one(
        {"_id": user_id, **LIVE}, {"$set": {outbox.PURGE: True}, **outbox.push(event)}
    )
    await kit.redis.delete(access_tokens.spotify_changed_key(kit.settings.namespace, user_id))
    await outbox.try_flush(kit, collection=USERS, doc_id=user_id)


async def sign_out(kit: Kit, *, user_id: str, ttl: int) -> None:
    """Refuse every token issued to the user until now (the gateway checks this)."""
    key = access_tokens.revoked_key(kit.settings.namespace, user_id)
    await kit.redis.set(key, int(time.time() * 1000), ex=ttl + 60)


# Keeps the later of two times: deliveries come late and twice.
_KEEP_LATEST = """
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 0
"""


async def spotify_changed(
    kit: Kit, *, event: events.UserAuthorized | events.UserDisconnected
) -> None:
    """Connect or disconnect the account's Spotify flag, unless a later change was applied
    already; then tell the gateway that tokens issued before this change carry a stale
    `spotify` claim."""
    seq = events.spotify_seq(event)
    await kit.database[USERS].update_one(
        {
            "_id": event.user_id,
            "$or": [{SPOTIFY_SEQ: {"$exists": False}}, {SPOTIFY_SEQ: {"$lt": seq}}],
        },
        {"$set": {"spotify": isinstance(event, events.UserAuthorized), SPOTIFY_SEQ: seq}},
    )
    key = access_tokens.spotify_changed_key(kit.settings.namespace, event.user_id)
    changed_ms = int(event.occurred_at.timestamp() * 1000)
    await kit.redis.eval(_KEEP_LATEST, 1, key, changed_ms, access_tokens.TTL_SECONDS + 60)


async def export(kit: Kit, *, user_id: str) -> dict[str, Any]:
    """The account as its owner may take it away: never the password hash."""
    doc = await kit.database[USERS].find_one({"_id": user_id, **LIVE})
    if doc is None:
        raise errors.not_found("The account does not exist.")
    created: datetime.datetime | None = doc.get("created_at")
    return {
        "userId": doc["_id"],
        "userName": doc["user_name"],
        "email": doc["email"],
        "spotify": bool(doc.get("spotify", False)),
        "createdAt": created.isoformat() if created else None,
    }


async def _confirm(
    kit: Kit,
    *,
    hasher: passwords.Hasher,
    doc: dict[str, Any],
    password: str,
    client: str,
    limits: attempts.Limits,
    wrong: errors.ApiError,
) -> None:
    """Check the account's password as a sign-in does: the attempt is reserved first and a
    failure counts toward the same limits, so no route is a way around them."""
    reservation = await attempts.reserve(
        kit, login=doc["user_name_key"], client=client, limits=limits
    )
    try:
        matches = await hasher.verify(doc["password"], password)
    except passwords.Busy:
        await attempts.unchecked(kit, reservation)
        raise busy() from None
    if not matches:
        raise wrong
    await attempts.succeeded(kit, reservation)
