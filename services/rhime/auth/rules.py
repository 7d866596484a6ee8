"""Sign-up rules: userName, email and password formats.

Plain string checks rather than regular expressions: sign-up is open to anyone, and each check
here runs in time linear in its (already bounded) input, whatever that input is.
"""

from __future__ import annotations

import string

_WORD = frozenset(string.ascii_letters + string.digits + "_")
# word characters and dots: user names, and either side of an email once hyphens are dots
_DOTTED = _WORD | {"."}
MAX_EMAIL = 254
MIN_PASSWORD = 8
MAX_PASSWORD = 128
# From this length on a password is a passphrase and needs no particular characters.
PASSPHRASE = 15


def user_name(value: str) -> str:
    value = value.strip()
    if not 2 <= len(value) <= 20:
        raise ValueError("userName must be 2 to 20 characters long")
    if not set(value) <= _DOTTED or value.startswith(".") or value.endswith(".") or ".." in value:
        raise ValueError(
            "userName may contain letters, digits, underscores and single dots, "
            "and may not start or end with a dot"
        )
    return value


def email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > MAX_EMAIL or not _is_email(value):
        raise ValueError("email must be a valid email address")
    return value


def _is_email(value: str) -> bool:
    """The original's format: word characters joined by single dots or hyphens on both sides
    of one @, and a domain ending in a dot and a label of 2 or 3 characters."""
    local, at, domain = value.partition("@")
    if not at or not _words(local) or not _words(domain):
        return False
    dot = domain.rfind(".")
    return dot > 0 and 2 <= len(domain) - dot - 1 <= 3 and "-" not in domain[dot:]


def _words(part: str) -> bool:
    """Runs of word characters separated by single `.` or `-`, none at either end."""
    dotted = part.replace("-", ".")
    return (
        bool(dotted)
        and set(dotted) <= _DOTTED
        and ".." not in dotted
        and not dotted.startswith(".")
        and not dotted.endswith(".")
    )


def password(value: str) -> str:
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValueError(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if not value.isprintable():
        raise ValueError("password may not contain control characters")
    if len(value) < PASSPHRASE and not (
        any(c.isalpha() for c in value)
        and any(c.isdigit() for c in value)
        and any(not c.isalnum() and not c.isspace() for c in value)
    ):
        raise ValueError(
            f"a password shorter than {PASSPHRASE} characters must contain a letter, "
            "a digit and a symbol"
        )
    return value
