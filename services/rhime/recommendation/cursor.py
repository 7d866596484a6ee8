"""The position of a page of recommendations, as the opaque `cursor` clients pass back."""

from __future__ import annotations

import base64
import binascii
import math

import orjson

from rhime.kit import errors


def encode(similarity: float, other_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([similarity, other_id])).decode()


def decode(cursor: str) -> tuple[float, str]:
    """The position `encode` wrote; 400 for anything else. Only a finite number and a
    string reach the query: a NaN there makes the Mongo-wire server drop the connection."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError):
        decoded = None
    match decoded:
        case [int() | float() as similarity, str() as other_id] if not isinstance(
            similarity, bool
        ) and math.isfinite(similarity):
            return float(similarity), other_id
    raise errors.bad_request("The cursor is not valid.", field="cursor")
