"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from rhime.kit import identity

SECRET = "test-internal-secret-0123456789-abcdefghij"


def auth_headers(
    user_id: str, *, user_name: str = "someone", spotify: bool = True, secret: str = SECRET
) -> dict[str, str]:
    """Headers carrying the identity the gateway would forward for this user."""
    token = identity.encode(
        identity.Identity(user_id=user_id, user_name=user_name, spotify=spotify), secret=secret
    )
    return {identity.HEADER: token}
