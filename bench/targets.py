"""Each benchmark figure beside its target, and one final `ok`/`short` line per benchmark."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True, kw_only=True)
class Row:
    name: str
    figure: str
    target: str
    met: bool


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def at_least(name: str, value: float, target: float, *, unit: str = "") -> Row:
    return Row(
        name=name,
        figure=f"{value:,.0f}{unit}",
        target=f">= {target:,.0f}{unit}",
        met=value >= target,
    )


def at_most(name: str, value: float, target: float, *, unit: str = "") -> Row:
    return Row(
        name=name,
        figure=f"{value:,.1f}{unit}",
        target=f"<= {target:,.1f}{unit}",
        met=value <= target,
    )


def holds(name: str, met: bool) -> Row:
    return Row(name=name, figure="yes" if met else "no", target="yes", met=met)


def report(rows: list[Row]) -> None:
    """Print the table and the verdict line (`ok` when every target is met)."""
    width = max(len(r.name) for r in rows)
    print()
    for r in rows:
        verdict = "ok" if r.met else "short"
        print(f"  {r.name:{width}}  {r.figure:>12}  target {r.target:<14} {verdict}")
    print("ok" if all(r.met for r in rows) else "short")
