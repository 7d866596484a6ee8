"""Ids in paths and queries: ObjectId hex strings, checked before they reach a query."""

from __future__ import annotations

import hashlib
import re

from rhime.kit import errors

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def is_object_id(value: str) -> bool:
    return bool(OBJECT_ID.fullmatch(value))


def object_id(value: str, *, what: str) -> str:
    """The id, lowercased; 400 "Invalid <what>" (field `what`) unless it is 24 hex digits."""
    if not is_object_id(value):
        raise errors.bad_request(f"Invalid {what}", field=what)
    return value.lower()


def tombstone(user_id: str) -> str:
    """The `_id` that marks a deleted person in a store that must not write them back (a
    late or repeated event): it does not name them."""
    return "gone:" + hashlib.sha256(user_id.encode()).hexdigest()
