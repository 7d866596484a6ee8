""" "People you may know": closeness in the follow graph, blended with taste.

A candidate is close when people I follow follow them. Each such person counts, Adamic-Adar
style, ``1 / ln(1 + f)`` where ``f`` is how many people they follow: someone who follows
five people says more by following a candidate than someone who follows everyone.
The sum is squashed into [0, 1) (``aa / (aa + 1)``, a half at one strong mutual follow) so a
blend weight means the same whatever the degrees.

The blend is additive, ``taste + weight * closeness``: with no one followed every closeness
is 0 and the score is the taste similarity itself, so newcomers are ranked exactly as before.
The weight is chosen on a validation population (``bench/friends.py``, "people you may know").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Hashable, Mapping
from typing import Generic, TypeVar

Id = TypeVar("Id", bound=Hashable)

WEIGHT = 0.75  # chosen on the validation population; see docs/recommendations.md


@dataclasses.dataclass(frozen=True, slots=True)
class Proximity(Generic[Id]):
    """A candidate's Adamic-Adar sum and the people I follow who follow them, heaviest first."""

    adamic_adar: float
    via: tuple[Id, ...]

    @property
    def closeness(self) -> float:
        return closeness(self.adamic_adar)


def via_weight(following: int) -> float:
    """What one person I follow adds by following a candidate, given how many they follow."""
    return 1.0 / math.log(1 + max(1, following))


def closeness(adamic_adar: float) -> float:
    """An Adamic-Adar sum squashed into [0, 1)."""
    return adamic_adar / (adamic_adar + 1.0) if adamic_adar > 0 else 0.0


def proximities(
    *,
    user: Id,
    mine: Collection[Id],
    following: Mapping[Id, Collection[Id]],
    degree: Mapping[Id, int] | None = None,
) -> dict[Id, Proximity[Id]]:
    """Everyone followed by someone in ``mine`` (the people ``user`` follows), except ``user``
    and ``mine`` themselves. ``following[z]`` is whom ``z`` follows (possibly cut short);
    ``degree[z]``, when given, is how many ``z`` really follows (else ``len(following[z])``)."""
    sums: dict[Id, float] = {}
    vias: dict[Id, list[tuple[float, Id]]] = {}
    for z in mine:
        theirs = following.get(z, ())
        if not theirs:
            continue
        w = via_weight(degree.get(z, len(theirs)) if degree is not None else len(theirs))
        for c in theirs:
            if c == user or c in mine:
                continue
            sums[c] = sums.get(c, 0.0) + w
            vias.setdefault(c, []).append((w, z))
    return {
        c: Proximity(
            adamic_adar=total,
            # heaviest first; ties in a stable order so explanations do not flicker
            via=tuple(z for _, z in sorted(vias[c], key=lambda p: (-p[0], str(p[1])))),
        )
        for c, total in sums.items()
    }


def blend(*, taste: float, closeness: float, weight: float = WEIGHT) -> float:
    """The ranking score: taste similarity raised by graph closeness."""
    return taste + weight * closeness
