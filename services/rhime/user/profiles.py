"""Profiles in the user database: created from `user.created`, read, edited by their owner."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from rhime import blocking
from rhime.kit import errors, lookups, tombstones
from rhime.kit.kit import Kit
from rhime.user import images, names, search

PROFILES = "profiles"
DEFAULT_AVATAR = "https://cdn-icons-png.flaticon.com/512/149/149071.png"
MAX_CARDS = 100
# profiles made before user.created dropped the email may still hold one: never shown
_PUBLIC = {"email": 0, "image_key": 0}


async def create(kit: Kit, *, user_id: str, user_name: str) -> bool:
    """Idempotent: a second delivery finds the profile and changes nothing but indexing it
    for search again (the first may have stopped between the two). A person who deleted
    their account is not written back (a late `user.created`, or a lookup that raced the
    deletion): False then."""
    if await tombstones.gone(kit.database[PROFILES], user_id):
        return False
    first, last = names.random_name()
    doc: dict[str, Any] | None = {
        "_id": user_id,
        "user_name": user_name,
        "first_name": first,
        "last_name": last,
    }
    try:
        await kit.database[PROFILES].insert_one(doc)
    except DuplicateKeyError:
        doc = await kit.database[PROFILES].find_one({"_id": user_id}, _PUBLIC)
    if doc is not None:
        await search.index(kit, user_id=user_id, profile=doc)
    # the forgetting began meanwhile: undo
    if await tombstones.gone(kit.database[PROFILES], user_id):
        if doc is not None:
            await search.unindex(kit, user_id=user_id, profile=doc)
        await kit.database[PROFILES].delete_one({"_id": user_id})
        return False
    return True


async def get(kit: Kit, *, user_id: str) -> dict[str, Any]:
    """The profile. Someone who signed up a moment ago may not have one yet (their
    `user.created` in flight): the auth service is asked, and the profile made as the event
    would have."""
    doc = await kit.database[PROFILES].find_one({"_id": user_id}, _PUBLIC)
    if doc is None:
        name = await lookups.user_name(kit, user_id=user_id)
        if name is not None and await create(kit, user_id=user_id, user_name=name):
            doc = await kit.database[PROFILES].find_one({"_id": user_id}, _PUBLIC)
    if doc is None:
        raise errors.not_found("The profile does not exist.")
    return dict(doc)


def _owner(caller: str, user_id: str) -> None:
    if caller != user_id:
        raise errors.forbidden("You can only change your own profile.")


async def update(kit: Kit, *, caller: str, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    _owner(caller, user_id)
    sets = {k: v for k, v in fields.items() if v not in ("", None)}
    unsets = {k: "" for k, v in fields.items() if v in ("", None)}
    update: dict[str, Any] = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    profiles = kit.database[PROFILES]
    before = await (
        profiles.find_one_and_update({"_id": user_id}, update)
        if update
        else profiles.find_one({"_id": user_id}, _PUBLIC)
    )
    if before is None:
        raise errors.not_found("The profile does not exist.")
    after = await get(kit, user_id=user_id)
    # indexed after the write, and on every edit: repeating one repairs an index write lost
    await search.index(kit, user_id=user_id, profile=after)
    await search.unindex(kit, user_id=user_id, profile=before, keep=after)
    return after


async def find(
    kit: Kit, *, viewer: str, q: str, after: tuple[str, str] | None
) -> tuple[list[dict[str, str]], str | None]:
    """People whose userName, display name or a word of it starts with `q` (normalised), but
    those blocking the viewer or blocked by them."""
    hidden = await blocking.hidden(kit.database, user_id=viewer)
    docs, next_ = await search.find(kit, q=q, after=after, collection=PROFILES, hidden=hidden)
    return [card(d) for d in docs], next_


async def keep_search_built(kit: Kit) -> None:
    await search.keep_built(kit, collection=PROFILES)


async def start_upload(
    kit: Kit, *, store: images.Store, caller: str, user_id: str, content_type: str
) -> tuple[str, str, dict[str, str]]:
    """A pending key and the presigned POST (URL and form fields) that uploads to it."""
    _owner(caller, user_id)
    await get(kit, user_id=user_id)
    key = store.new_key(user_id, content_type)
    url, fields = await store.upload_form(key=key, content_type=content_type)
    return key, url, fields


async def confirm_upload(
    kit: Kit, *, store: images.Store, caller: str, user_id: str, key: str
) -> dict[str, Any]:
    """Move a checked upload to its public key and store its URL; the previous image is
    removed. The size and type are checked again here: the store's own policy is the first
    line, not the only one."""
    _owner(caller, user_id)
    pending = f"{images.PENDING}{user_id}/"
    name = key.removeprefix(pending)
    if not key.startswith(pending) or not name or "/" in name:
        raise errors.bad_request("Invalid key", field="key")
    stored = await store.stat(key)
    if stored is None:
        raise errors.bad_request("The image has not been uploaded.", field="key")
    if stored.size > store.max_bytes or stored.content_type not in images.CONTENT_TYPES:
        await store.delete(key)
        mb = f"{store.max_bytes / 1_000_000:g} MB"
        raise errors.bad_request(f"Use a JPEG, PNG or WebP image up to {mb}.", field="key")
    key = f"{user_id}/{name}"
    await store.move(source=pending + name, target=key)
    before = await kit.database[PROFILES].find_one_and_update(
        {"_id": user_id},
        {"$set": {"image_key": key, "profile_image": store.public_url(key)}},
    )
    if before is None:
        raise errors.not_found("The profile does not exist.")
    if before.get("image_key") and before["image_key"] != key:
        await store.delete(before["image_key"])
    return await get(kit, user_id=user_id)


async def delete_image(
    kit: Kit, *, store: images.Store, caller: str, user_id: str
) -> dict[str, Any]:
    _owner(caller, user_id)
    before = await kit.database[PROFILES].find_one_and_update(
        {"_id": user_id},
        {"$unset": {"image_key": "", "profile_image": ""}},
    )
    if before is None:
        raise errors.not_found("The profile does not exist.")
    if before.get("image_key"):
        await store.delete(before["image_key"])
    return await get(kit, user_id=user_id)


async def forget(kit: Kit, *, store: images.Store, user_id: str) -> None:
    """The person deleted their account: their images, their search entries, then their
    profile (a redelivery after a crash in between finds nothing left to do; an entry left by
    a crash after the profile went is dropped by the next search that meets it). A tombstone
    (a hash, not their id) comes first, so that nothing writes the profile back."""
    await tombstones.lay(kit.database[PROFILES], user_id=user_id)
    await store.delete_all(user_id)
    doc = await kit.database[PROFILES].find_one({"_id": user_id})
    if doc is not None:
        await search.unindex(kit, user_id=user_id, profile=doc)
    await kit.database[PROFILES].delete_one({"_id": user_id})
    await blocking.forget(kit.database, user_id=user_id)


async def cards(kit: Kit, *, ids: list[str]) -> dict[str, dict[str, str]]:
    """Author cards for other services; unknown ids are left out."""
    found: dict[str, dict[str, str]] = {}
    cursor = kit.database[PROFILES].find(
        {"_id": {"$in": list(dict.fromkeys(ids))}},
        {"user_name": 1, "first_name": 1, "last_name": 1, "profile_image": 1},
    )
    async for doc in cursor:
        found[doc["_id"]] = card(doc)
    return found


def card(doc: dict[str, Any]) -> dict[str, str]:
    display = " ".join(p for p in (doc.get("first_name"), doc.get("last_name")) if p)
    return {
        "userId": doc["_id"],
        "userName": doc["user_name"],
        "displayName": display.title() or doc["user_name"],
        "profileImage": doc.get("profile_image") or DEFAULT_AVATAR,
    }
