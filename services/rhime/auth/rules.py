"""Sign-up rules (the original's): userName, email and password formats."""

from __future__ import annotations

import re

USER_NAME = re.compile(r"^[A-Za-z0-9_](?!.*\.\.)[A-Za-z0-9_.]*(?<!\.)$")
EMAIL = re.compile(r"^\w+([.-]?\w+)*@\w+([.-]?\w+)*(\.\w{2,3})+$", re.ASCII)
PASSWORD = re.compile(r"^[A-Za-z0-9@$!%*#?&]+$")
_SPECIALS = set("@$!%*#?&")


def user_name(value: str) -> str:
    value = value.strip()
    if not 2 <= len(value) <= 20:
        raise ValueError("userName must be 2 to 20 characters long")
    if not USER_NAME.fullmatch(value):
        raise ValueError(
            "userName may contain letters, digits, underscores and single dots, "
            "and may not start or end with a dot"
        )
    return value


def email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise ValueError("email must be a valid email address")
    return value


def password(value: str) -> str:
    if not 7 <= len(value) <= 20:
        raise ValueError("password must be 7 to 20 characters long")
    if not PASSWORD.fullmatch(value):
        raise ValueError("password may contain only letters, digits and @$!%*#?&")
    if not (
        any(c.isalpha() for c in value)
        and any(c.isdigit() for c in value)
        and any(c in _SPECIALS for c in value)
    ):
        raise ValueError("password must contain a letter, a digit and one of @$!%*#?&")
    return value
