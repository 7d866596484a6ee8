"""Finding people by userName or display name: a lexicographic index in one Redis sorted set.

FerretDB 1.x on SQLite answers only a lone `_id` equality without reading the whole
collection (docs/performance.md), so a prefix query on a collection of profiles, even one on
`_id` ranges, is a scan there. A sorted set answers a prefix by ZRANGEBYLEX in O(log n + page)
on every store. Each member is `<term>\\x00<userId>\\x00<all the person's terms>`: terms are
the normalised userName, each word of the display name and the whole display name, so
`ana`, `már` and `ana m` all find "Ana Maria". The set is derived from the profiles and
checked against them on every read: an entry whose profile is gone, or whose terms no longer
match it, is skipped and removed, so a crash between the profile write and the index write
never shows a wrong name (the profile is written first; repeating the edit indexes it).
`keep_built` rebuilds the set from the profiles when Redis lost it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from rhime.kit import errors, ids
from rhime.kit.kit import Kit

log = logging.getLogger("rhime.user")
PAGE = 20
MAX_QUERY = 50
_SEP = "\x00"  # between term, user id and the term list (no term holds a control character)
_JOIN = "\x01"  # between the terms of the list
_BATCH = 2 * PAGE
_ROUNDS = 4  # Redis reads per page at most; a page may come back short, with `next`
_REBUILD_EVERY = 60.0
_REBUILD_BATCH = 500


def normalise(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded, spaces
    collapsed (`Ána  MARÍA` → `ana maria`)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def terms(profile: Mapping[str, Any]) -> list[str]:
    """The terms a profile is found by, sorted and distinct."""
    words = [normalise(str(profile.get(k) or "")) for k in ("first_name", "last_name")]
    display = " ".join(w for w in words if w)
    found = {normalise(str(profile.get("user_name") or "")), display, *display.split()}
    return sorted(t for t in found if t)


def members(user_id: str, found_by: Sequence[str]) -> list[str]:
    listed = _JOIN.join(found_by)
    return [f"{term}{_SEP}{user_id}{_SEP}{listed}" for term in found_by]


@dataclasses.dataclass(frozen=True)
class Hit:
    term: str
    user_id: str
    terms: tuple[str, ...]
    member: str


def parse(member: str) -> Hit | None:
    parts = member.split(_SEP)
    if len(parts) != 3:
        return None
    return Hit(parts[0], parts[1], tuple(parts[2].split(_JOIN)), member)


def first_match(hit: Hit, query: str) -> bool:
    """A person matches by several terms (`ana.b` and `ana`); they are listed once, at the
    smallest of them, so a later page never repeats them."""
    matching = [t for t in hit.terms if t.startswith(query)]
    return hit.term.startswith(query) and hit.term == min(matching, default=hit.term)


def query(raw: str) -> str:
    """The normalised query, or 400: 1 to 50 characters once trimmed, no control characters. A
    leading `@` (as names are shown) is ignored."""
    text = raw.strip()
    if not 1 <= len(text) <= MAX_QUERY or any(unicodedata.category(c) == "Cc" for c in text):
        raise errors.bad_request(f"q must be 1 to {MAX_QUERY} characters.", field="q")
    found = normalise(text.removeprefix("@"))
    if not found:
        raise errors.bad_request(f"q must be 1 to {MAX_QUERY} characters.", field="q")
    return found


def cursor(hit: Hit) -> str:
    raw = f"{hit.term}{_SEP}{hit.user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def after(value: str) -> tuple[str, str]:
    """(term, userId) of a `next` cursor, or 400."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.bad_request("Invalid after", field="after") from None
    term, _, user_id = raw.partition(_SEP)
    if not term or not ids.is_object_id(user_id):
        raise errors.bad_request("Invalid after", field="after")
    return term, user_id


def _key(kit: Kit) -> str:
    return kit.key("user-search", "index")


async def index(kit: Kit, *, user_id: str, profile: Mapping[str, Any]) -> None:
    """Add the profile's entries (idempotent)."""
    entries = members(user_id, terms(profile))
    if entries:
        await kit.redis.zadd(_key(kit), dict.fromkeys(entries, 0))


async def unindex(
    kit: Kit, *, user_id: str, profile: Mapping[str, Any], keep: Mapping[str, Any] | None = None
) -> None:
    """Remove the profile's entries, but those the profile `keep` (its new state) has too. With
    `keep=None` the person is not found any more (an account removed)."""
    kept = set(members(user_id, terms(keep))) if keep is not None else set()
    gone = [m for m in members(user_id, terms(profile)) if m not in kept]
    if gone:
        await kit.redis.zrem(_key(kit), *gone)


async def find(
    kit: Kit,
    *,
    q: str,
    after: tuple[str, str] | None,
    collection: str,
    hidden: Collection[str] = (),
    limit: int = PAGE,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` profiles (their documents) whose terms start with `q`, in term order, and
    the cursor of the next page (None at the end). The people in `hidden` are passed over."""
    prefix = q.encode()
    start = b"[" + (f"{after[0]}{_SEP}{after[1]}\x01".encode() if after else prefix)
    end = b"[" + prefix + b"\xff"  # above every UTF-8 continuation of the prefix
    found: list[dict[str, Any]] = []
    last: Hit | None = None
    for _ in range(_ROUNDS):
        raw = await kit.redis.zrangebylex(_key(kit), start, end, 0, _BATCH)
        batch = [m if isinstance(m, str) else m.decode() for m in raw]
        hits = [h for h in map(parse, batch) if h is not None]
        # only as many people as the page lacks are looked up
        chosen: list[Hit] = []
        used = len(hits)
        for n, hit in enumerate(hits):
            if first_match(hit, q) and hit.user_id not in hidden:
                chosen.append(hit)
                if len(chosen) == limit - len(found):
                    used = n + 1
                    break
        docs = await _profiles(kit, collection, {h.user_id for h in chosen})
        stale = {h.member for h in chosen if not _current(h, docs.get(h.user_id))}
        if stale:
            await kit.redis.zrem(_key(kit), *stale)
        found += [docs[h.user_id] for h in chosen if h.member not in stale]
        last = hits[used - 1] if used else last
        if len(batch) < _BATCH and used == len(hits):
            return found, None
        if len(found) == limit:
            break
        start = b"(" + (batch[-1] if used == len(hits) else hits[used - 1].member).encode()
    return found, cursor(last) if last else None


def _current(hit: Hit, doc: Mapping[str, Any] | None) -> bool:
    """The entry still describes the profile: it exists and is found by these very terms."""
    return doc is not None and tuple(terms(doc)) == hit.terms


async def _profiles(kit: Kit, collection: str, user_ids: Iterable[str]) -> dict[str, Any]:
    """Profiles by `_id` lookups (the one query FerretDB serves without a scan), at once."""
    docs = await asyncio.gather(
        *(kit.database[collection].find_one({"_id": u}, {"email": 0}) for u in user_ids)
    )
    return {d["_id"]: dict(d) for d in docs if d is not None}


async def rebuild(kit: Kit, *, collection: str) -> int:
    """Index every profile (idempotent: ZADD of what is there already changes nothing); a
    scan, run only when the set is missing. Returns the profiles read."""
    count = 0
    pipe_size = 0
    cursor_ = kit.database[collection].find({}, {"user_name": 1, "first_name": 1, "last_name": 1})
    async with kit.redis.pipeline(transaction=False) as pipe:
        async for doc in cursor_:
            entries = members(doc["_id"], terms(doc))
            if entries:
                pipe.zadd(_key(kit), dict.fromkeys(entries, 0))
                pipe_size += 1
            count += 1
            if pipe_size >= _REBUILD_BATCH:
                await pipe.execute()
                pipe_size = 0
        await pipe.execute()
    return count


async def keep_built(kit: Kit, *, collection: str, every: float = _REBUILD_EVERY) -> None:
    """Rebuild the index when Redis has lost it (a fresh Redis, an eviction, the first start
    after the index was introduced), then look again every `every` seconds. An empty set is
    a missing key, so with no profiles this scans nothing, every time."""
    while True:
        if not await kit.redis.exists(_key(kit)):
            count = await rebuild(kit, collection=collection)
            if count:
                log.info("search index rebuilt from %d profiles", count)
        await asyncio.sleep(every)
