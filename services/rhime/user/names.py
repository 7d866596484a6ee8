"""Friendly random display names for new profiles (the original picked a Pokémon)."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber", "brisk", "calm", "dusky", "eager", "fuzzy", "gentle", "happy", "indigo", "jolly",
    "kind", "lively", "mellow", "nimble", "olive", "plucky", "quiet", "rosy", "sunny", "tidy",
    "upbeat", "vivid", "witty", "zesty",
)  # fmt: skip
_ANIMALS = (
    "otter", "finch", "lynx", "panda", "heron", "koala", "robin", "tapir", "wombat", "gecko",
    "marten", "puffin", "bison", "ibis", "lemur", "quokka", "serval", "yak", "zebra", "owl",
)  # fmt: skip


def random_name(rng: random.Random | None = None) -> tuple[str, str]:
    """(firstName, lastName), letters only, so a later PATCH keeps them valid."""
    pick = rng or random.SystemRandom()
    return pick.choice(_ADJECTIVES), pick.choice(_ANIMALS)
