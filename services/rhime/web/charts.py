"""Small charts as plain numbers for SVG templates (server-rendered, no client code)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

# Muted, distinguishable colours that keep contrast on the light card background.
PALETTE = ("#6d28d9", "#0f766e", "#b45309", "#be123c", "#1d4ed8", "#4d7c0f", "#a21caf", "#475569")
BREAKDOWN_LABELS = (("tracks", "Tracks"), ("artists", "Artists"), ("genres", "Genres"))
DONUT_RADIUS = 40.0


@dataclasses.dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float  # 0..1
    percent: int
    width: float  # 0..100, share of the bar track


@dataclasses.dataclass(frozen=True)
class Slice:
    label: str
    percent: int
    colour: str
    dash: float  # arc length on the donut circle
    offset: float  # where the arc starts (negative dash offset)


def breakdown_bars(breakdown: Mapping[str, float] | None) -> list[Bar]:
    """One bar per category of the similarity breakdown, in a fixed order."""
    values = breakdown or {}
    bars = []
    for key, label in BREAKDOWN_LABELS:
        value = _unit(values.get(key, 0.0))
        bars.append(Bar(key, label, value, round(value * 100), round(value * 100, 1)))
    return bars


def genre_mix(weights: Iterable[tuple[str, float]], *, top: int = 6) -> list[Slice]:
    """Donut slices for the biggest genres plus "Other"; empty when there is no weight."""
    items = sorted(((n, w) for n, w in weights if w > 0), key=lambda nw: -nw[1])
    total = sum(w for _, w in items)
    if total <= 0:
        return []
    shown = items[:top]
    rest = total - sum(w for _, w in shown)
    if rest > 0:
        shown.append(("Other", rest))
    circumference = 2 * math.pi * DONUT_RADIUS
    slices, start = [], 0.0
    for i, (name, weight) in enumerate(shown):
        length = circumference * weight / total
        colour = PALETTE[i % len(PALETTE)] if name != "Other" else "#94a3b8"
        slices.append(
            Slice(name, round(100 * weight / total), colour, round(length, 3), round(-start, 3))
        )
        start += length
    return slices


def _unit(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(number):
        return 0.0
    return min(max(number, 0.0), 1.0)
