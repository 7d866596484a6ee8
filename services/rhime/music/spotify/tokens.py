"""Spotify tokens at rest: one document per user, access and refresh tokens Fernet-encrypted.

The document outlives a disconnection (tokens removed, `connected` false) so that the
connection counter keeps growing: each connection publishes its own `user.authorized`, and
its end its own `user.disconnected`.
"""

from __future__ import annotations

import asyncio
import datetime
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from cryptography.fernet import Fernet, InvalidToken
from pymongo.errors import DuplicateKeyError

from rhime import events
from rhime.kit import outbox
from rhime.music.spotify import api
from rhime.music.spotify.settings import Settings
from rhime.music.spotify.tokencache import StoredToken, TokenInfo

COLLECTION = "tokens"
# refresh when the access token has less than this left, so a caller never gets a dead one
REFRESH_WINDOW = datetime.timedelta(seconds=60)
# Deletes the refresh lock only while it is still ours: one that expired may be another's.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class NotConnected(Exception):
    """The user has no Spotify connection."""


class Revoked(Exception):
    """Spotify no longer accepts the user's refresh token; they must connect again."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fernet(settings: Settings) -> Fernet:
    return Fernet(settings.encryption_key.get_secret_value().encode())


def encrypt(settings: Settings, value: str) -> str:
    return _fernet(settings).encrypt(value.encode()).decode()


def decrypt(settings: Settings, value: str) -> str:
    try:
        return _fernet(settings).decrypt(value.encode()).decode()
    except InvalidToken:
        # a rotated key without re-encryption: the tokens are unusable, as if revoked
        raise Revoked("stored tokens cannot be decrypted") from None


def _expiry(body: dict[str, Any]) -> datetime.datetime:
    seconds = int(body.get("expires_in", 3600))
    return now() + datetime.timedelta(seconds=seconds)


async def save(db: Any, *, settings: Settings, user_id: str, body: dict[str, Any]) -> int:
    """Store a fresh grant (re-connecting replaces the tokens) and stage `user.authorized`
    in the same single-document write. Returns the connection number."""
    coll = db[COLLECTION]
    if not body.get("access_token"):
        raise api.SpotifyError(502, "token response without an access token")
    refresh = body.get("refresh_token")
    if not refresh:
        raise api.SpotifyError(502, "token response without a refresh token")
    fields = {
        "access": encrypt(settings, str(body["access_token"])),
        "refresh": encrypt(settings, str(refresh)),
        "expiresAt": _expiry(body),
        "scope": str(body.get("scope", api.SCOPE)),
        "connected": True,
        "connectedAt": now(),
    }
    for _ in range(10):
        doc = await coll.find_one({"_id": user_id}, {"connection": 1})
        number = int((doc or {}).get("connection", 0)) + 1
        event = events.UserAuthorized(
            id=f"user.authorized:{user_id}:{number}", user_id=user_id, connection=number
        )
        if doc is None:
            try:
                await coll.insert_one(
                    {
                        "_id": user_id,
                        **fields,
                        "connection": number,
                        outbox.FIELD: outbox.staged(event),
                    }
                )
            except DuplicateKeyError:
                continue  # connected concurrently: go round with the other's number
            return number
        # compare-and-set on the counter: two concurrent callbacks get distinct numbers
        result = await coll.update_one(
            {"_id": user_id, "connection": number - 1},
            {"$set": {**fields, "connection": number}, **outbox.push(event)},
        )
        if result.matched_count:
            return number
    raise RuntimeError(f"could not store the Spotify grant of {user_id}")


def _token_info(settings: Settings, doc: dict[str, Any]) -> TokenInfo:
    """A stored token as spotipy caches it."""
    expires: datetime.datetime = doc["expiresAt"]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=datetime.UTC)
    return {
        "access_token": decrypt(settings, doc["access"]),
        "refresh_token": decrypt(settings, doc["refresh"]),
        "token_type": "Bearer",
        "expires_at": int(expires.timestamp()),
        "scope": str(doc.get("scope", api.SCOPE)),
    }


def cache(
    db: Any,
    *,
    settings: Settings,
    user_id: str,
    write: Callable[[TokenInfo], Awaitable[None]],
) -> StoredToken:
    """spotipy's cache of `user_id`'s token: reads the stored token, writes with `write`."""

    async def read() -> TokenInfo | None:
        doc = await db[COLLECTION].find_one({"_id": user_id, "connected": True})
        return None if doc is None else _token_info(settings, doc)

    return StoredToken(
        loop=asyncio.get_running_loop(),
        read=read,
        write=write,
        wait_seconds=settings.spotify_request_seconds,
    )


async def exchange(
    db: Any, spotify: api.Client, *, settings: Settings, user_id: str, code: str
) -> int:
    """Trade an authorization code for tokens and store them as a new connection (`save`);
    the connection number."""
    number: int | None = None
    given_up = False

    async def store(token_info: TokenInfo) -> None:
        nonlocal number
        if given_up:
            # the caller was told it failed (its deadline passed): store nothing after all
            raise api.SpotifyError(504, "the code exchange was given up")
        number = await save(db, settings=settings, user_id=user_id, body=token_info)

    try:
        await api.exchange(
            spotify,
            settings=settings,
            code=code,
            cache=cache(db, settings=settings, user_id=user_id, write=store),
        )
    except BaseException:
        given_up = True
        raise
    if number is None:
        raise api.SpotifyError(502, "the code exchange stored no tokens")
    return number


async def is_connected(db: Any, *, user_id: str) -> bool:
    doc = await db[COLLECTION].find_one({"_id": user_id}, {"connected": 1})
    return bool(doc and doc.get("connected"))


async def disconnect(db: Any, *, user_id: str, refresh: str | None = None) -> bool:
    """Delete the tokens and stage `user.disconnected` in the same write; True if the user
    was connected. With `refresh` (the stored, encrypted refresh token), only if that is
    still the one stored."""
    coll = db[COLLECTION]
    guard = {"refresh": refresh} if refresh is not None else {}
    for _ in range(10):
        doc = await coll.find_one({"_id": user_id, "connected": True, **guard}, {"connection": 1})
        if doc is None:
            return False
        number = int(doc.get("connection", 0))
        event = events.UserDisconnected(
            id=f"user.disconnected:{user_id}:{number}", user_id=user_id, connection=number
        )
        # only over the connection just read: a reconnect meanwhile is not ended by this
        result = await coll.update_one(
            {"_id": user_id, "connected": True, "connection": number, **guard},
            {
                "$set": {"connected": False, "disconnectedAt": now()},
                "$unset": {"access": "", "refresh": "", "expiresAt": ""},
                **outbox.push(event),
            },
        )
        if result.modified_count:
            return True
    return False


async def access_token(
    db: Any,
    redis: aioredis.Redis,
    spotify: api.Client,
    *,
    settings: Settings,
    user_id: str,
    force_refresh: bool = False,
) -> tuple[str, datetime.datetime]:
    """A usable access token and its expiry, refreshed first when it is about to expire.

    A Redis lock per user makes concurrent callers (service replicas, worker jobs) refresh
    once: Spotify may rotate the refresh token, and a second refresh with the old one fails.
    """
    coll = db[COLLECTION]
    lock_key = settings.key("spotify-refresh", user_id)
    lock_seconds = settings.refresh_lock_seconds
    loop = asyncio.get_running_loop()
    # a waiter outlasts the holder's lock: by then the holder has finished or given up
    deadline = loop.time() + lock_seconds
    seen: datetime.datetime | None = None
    while True:
        doc = await coll.find_one({"_id": user_id, "connected": True})
        if doc is None:
            raise NotConnected(user_id)
        expires: datetime.datetime = doc["expiresAt"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.UTC)
        refreshed_meanwhile = seen is not None and expires != seen
        if refreshed_meanwhile or (not force_refresh and expires - now() > REFRESH_WINDOW):
            return decrypt(settings, doc["access"]), expires
        seen = expires
        owner = secrets.token_hex(8)
        if await redis.set(lock_key, owner, nx=True, ex=lock_seconds):
            try:
                # re-read under the lock: a refresh that finished just before must not be
                # repeated with a refresh token it may have rotated away
                doc = await coll.find_one({"_id": user_id, "connected": True})
                if doc is None:
                    raise NotConnected(user_id)
                if doc["expiresAt"] != seen:
                    return decrypt(settings, doc["access"]), doc["expiresAt"]
                fresh = await _refresh(coll, spotify, settings=settings, doc=doc)
            finally:
                await redis.eval(_RELEASE, 1, lock_key, owner)
            if fresh is not None:
                return fresh
            continue  # the stored tokens changed under us: read them again
        if loop.time() > deadline:
            raise api.SpotifyError(503, "token refresh is taking too long")
        await asyncio.sleep(0.05)


async def _refresh(
    coll: Any, spotify: api.Client, *, settings: Settings, doc: dict[str, Any]
) -> tuple[str, datetime.datetime] | None:
    """Refresh with the tokens in `doc`; None when they were replaced meanwhile (a reconnect,
    or a refresh by a caller that no longer respected the lock), so nothing is stored."""
    user_id = doc["_id"]
    # fencing: every write below applies only over the tokens this refresh started from
    fence = {
        "_id": user_id,
        "connected": True,
        "refresh": doc["refresh"],
        "expiresAt": doc["expiresAt"],
    }
    sent = decrypt(settings, doc["refresh"])
    fresh: tuple[str, datetime.datetime] | None = None

    async def store(token_info: TokenInfo) -> None:
        # also when it comes after our deadline: the fence keeps it from overwriting newer
        # tokens, and a refresh token Spotify rotated on the way is then not lost
        nonlocal fresh
        access = token_info.get("access_token")
        if not access:
            raise api.SpotifyError(502, "token response without an access token")
        expires = _expiry(token_info)
        update: dict[str, Any] = {"access": encrypt(settings, str(access)), "expiresAt": expires}
        # Spotify may rotate it and the old one stops working; spotipy hands back the one it
        # was given when Spotify sent none, which is already stored
        rotated = token_info.get("refresh_token")
        if rotated and rotated != sent:
            update["refresh"] = encrypt(settings, str(rotated))
        result = await coll.update_one(fence, {"$set": update})
        if result.matched_count:
            fresh = str(access), expires

    try:
        # the deadline is shorter than the lock, so nobody else refreshes until we are done
        async with asyncio.timeout(settings.spotify_refresh_seconds):
            await api.refresh(
                spotify,
                settings=settings,
                refresh_token=sent,
                cache=cache(coll.database, settings=settings, user_id=user_id, write=store),
                within=settings.spotify_refresh_seconds,
            )
    except TimeoutError:
        raise api.SpotifyError(504, "token refresh timed out") from None
    except api.GrantError as exc:
        if exc.error != "invalid_grant":
            raise
        # refused: revoked, unless the stored token changed meanwhile and made ours stale
        if await disconnect(coll.database, user_id=user_id, refresh=doc["refresh"]):
            raise Revoked(user_id) from exc
        return None
    return fresh
