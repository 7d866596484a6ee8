"""Every Redis key the code builds is declared by some component in the catalogue: a key no
component may touch fails only at runtime, as NOPERM, under the store's ACL."""

from __future__ import annotations

import re
from pathlib import Path

from rhime import catalogue

SOURCES = Path(catalogue.__file__).parent
# `kit.key("prefix", ...)` / `settings.key("prefix", ...)` and f"{namespace}:prefix:..."
_BUILT = re.compile(r'\.key\(\s*"([a-z{}_-]+)"|f"\{[a-z_.]*namespace\}:([a-z{}_-]+)')


def test_every_key_prefix_in_the_code_is_granted_to_someone() -> None:
    used = {
        prefix
        for path in SOURCES.rglob("*.py")
        for match in _BUILT.finditer(path.read_text())
        for prefix in match.groups()
        if prefix
    }
    assert {"feed", "rate", "signed-out"} <= used  # the scan finds what it should
    declared = [
        pattern for c in catalogue.COMPONENTS for pattern in (*c.redis_keys, *c.redis_reads)
    ]
    undeclared = {
        prefix
        for prefix in used
        if not any(p == prefix or p.startswith(f"{prefix}:") for p in declared)
    }
    assert undeclared == set()
