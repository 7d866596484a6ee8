"""Ids in paths and queries: ObjectId hex strings, checked before they reach a query."""

from __future__ import annotations

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
