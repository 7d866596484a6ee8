"""`rhime status`: a live table of the locally running platform, per component: requests/s,
p99 latency, 5xx errors/s and consumer lag, read from each component's own `/metrics`.

`rhime up` records where each component listens in `<data>/platform.json` (`record`); the
table is computed from two scrapes `interval` seconds apart, by pure functions (`parse`,
`rates`, `table`) around a thin loop (`run`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

STATE_FILE = "platform.json"
_REQUESTS = "rhime_http_requests"
_LATENCY = "rhime_http_request_seconds"
_PENDING = "rhime_consumer_pending"


@dataclasses.dataclass(frozen=True)
class Scrape:
    """What the table needs from one scrape of a component's metrics (totals over routes)."""

    requests: float
    errors: float  # 5xx responses
    buckets: tuple[tuple[float, float], ...]  # latency histogram: (upper bound, cumulative)
    pending: float | None  # consumer lag over its durables; None: it consumes nothing


@dataclasses.dataclass(frozen=True)
class Row:
    component: str
    port: int
    state: str  # "up", "down" (no answer), "no metrics" (gRPC)
    rps: float | None = None
    p99_ms: float | None = None
    errors_per_s: float | None = None
    pending: float | None = None


def parse(text: str) -> Scrape:
    """The request, 5xx and latency totals and the consumer lag in Prometheus text."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    pending: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{_REQUESTS}_total":
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == f"{_LATENCY}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name == _PENDING:
                pending = (pending or 0.0) + sample.value
    return Scrape(
        requests=requests, errors=errors, buckets=tuple(sorted(buckets.items())), pending=pending
    )


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket as
    Prometheus' histogram_quantile does; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the largest finite bound: that bound is all we know
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def rates(before: Scrape, after: Scrape, seconds: float) -> tuple[float, float, float | None]:
    """Requests/s, 5xx/s and p99 (seconds) between two scrapes. A component that restarted
    in between (its counters went back) is read from zero."""
    if after.requests < before.requests:
        before = Scrape(requests=0.0, errors=0.0, buckets=(), pending=None)
    seconds = max(seconds, 1e-9)
    old = dict(before.buckets)
    delta = [(bound, count - old.get(bound, 0.0)) for bound, count in after.buckets]
    return (
        (after.requests - before.requests) / seconds,
        (after.errors - before.errors) / seconds,
        quantile(0.99, delta),
    )


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[Row], *, interval: float) -> str:
    lines = [
        f"{'component':24} {'port':>5} {'state':10} {'req/s':>8} {'p99 ms':>8} {'5xx/s':>7} "
        f"{'lag':>6}"
    ]
    for r in rows:
        lines.append(
            f"{r.component:24} {r.port:>5} {r.state:10} {_number(r.rps, '8.1f'):>8} "
            f"{_number(r.p99_ms, '8.1f'):>8} {_number(r.errors_per_s, '7.2f'):>7} "
            f"{_number(r.pending, '6.0f'):>6}"
        )
    lines.append(f"(over the last {interval:g} s; lag: events not yet delivered to its consumers)")
    return "\n".join(lines)


def row(
    component: str, port: int, before: Scrape | None, after: Scrape | None, seconds: float
) -> Row:
    if after is None:
        return Row(component=component, port=port, state="down")
    if before is None:
        return Row(component=component, port=port, state="up", pending=after.pending)
    rps, errors, p99 = rates(before, after, seconds)
    return Row(
        component=component,
        port=port,
        state="up",
        rps=rps,
        p99_ms=None if p99 is None else p99 * 1000,
        errors_per_s=errors,
        pending=after.pending,
    )


# --- where the platform runs ---------------------------------------------------------------


def record(data: Path, *, ports: Mapping[str, int], kinds: Mapping[str, str]) -> Path:
    """Write where each component of this `rhime up` listens (removed when it stops)."""
    path = data / STATE_FILE
    state = {
        "pid": os.getpid(),
        "components": {
            name: {
                "port": port,
                "kind": kinds[name],
                "metrics": f"http://127.0.0.1:{port}/metrics" if kinds[name] != "grpc" else None,
            }
            for name, port in ports.items()
        },
    }
    path.write_text(json.dumps(state, indent=2) + "\n")
    return path


def load(data: Path) -> dict[str, dict[str, object]] | None:
    """The components of the `rhime up` running on `data`, or None when none runs."""
    path = data / STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)  # a crashed `rhime up` leaves its file behind
    except (OSError, ValueError, KeyError, TypeError):
        return None
    components: dict[str, dict[str, object]] = state["components"]
    return components


def scrape(url: str, *, timeout: float = 1.0) -> Scrape | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse(response.read().decode())
    except (OSError, ValueError):
        return None


def run(
    *,
    data: Path,
    interval: float,
    once: bool,
    out: Callable[[str], None] = print,
) -> int:
    components = load(data)
    if components is None:
        print(f"no platform running on {data} (start it with `rhime up`)", file=sys.stderr)
        return 1
    urls = {name: info.get("metrics") for name, info in components.items()}

    def scrape_all() -> dict[str, Scrape | None]:
        return {name: scrape(str(url)) if url else None for name, url in urls.items()}

    before, taken = scrape_all(), time.monotonic()
    clear = sys.stdout.isatty() and not once
    while True:
        time.sleep(interval)
        after, now = scrape_all(), time.monotonic()
        rows = []
        for name, info in components.items():
            port = int(str(info["port"]))
            if urls[name] is None:
                rows.append(Row(component=name, port=port, state="no metrics"))
            else:
                rows.append(row(name, port, before[name], after[name], now - taken))
        out(("\x1b[H\x1b[2J" if clear else "") + table(rows, interval=round(now - taken, 1)))
        if once:
            return 0
        before, taken = after, now
