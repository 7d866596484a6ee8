"""Prometheus metrics, one registry per app so that apps built in one process stay apart."""

from __future__ import annotations

import dataclasses
from typing import TypedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# background jobs run for seconds to the half hour of their timeout
_JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)


@dataclasses.dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    consumed: Counter
    redelivered: Counter
    dead_lettered: Counter
    consumer_pending: Gauge
    published: Counter
    handling: Histogram
    stream_usage: Gauge
    outbox_dead: Counter
    outbox_staged: Gauge
    outbox_oldest: Gauge
    downstream_pending: Gauge
    cache: Counter
    job_queue: Gauge
    jobs: Histogram
    store_unavailable: Counter
    nats_disconnects: Counter


def create() -> Metrics:
    # The families register in this order, which is the order a scrape lists them in.
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        **_http(registry),
        **_events(registry),
        **_backlogs(registry),
        **_jobs(registry),
        **_stores(registry),
    )


class _Http(TypedDict):
    requests: Counter
    latency: Histogram


def _http(registry: CollectorRegistry) -> _Http:
    return _Http(
        requests=Counter(
            "rhime_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "rhime_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
    )


class _Events(TypedDict):
    consumed: Counter
    redelivered: Counter
    dead_lettered: Counter
    consumer_pending: Gauge
    published: Counter
    handling: Histogram


def _events(registry: CollectorRegistry) -> _Events:
    """Events consumed and published on the bus."""
    return _Events(
        consumed=Counter(
            "rhime_events_consumed",
            "Events handled",
            ["subject", "durable", "outcome"],
            registry=registry,
        ),
        redelivered=Counter(
            "rhime_events_redelivered",
            "Deliveries after the first",
            ["subject", "durable"],
            registry=registry,
        ),
        dead_lettered=Counter(
            "rhime_events_dead_lettered",
            "Events sent to the dead-letter subject",
            ["subject", "durable"],
            registry=registry,
        ),
        consumer_pending=Gauge(
            "rhime_consumer_pending",
            "Messages not yet delivered to a durable consumer (lag)",
            ["durable"],
            registry=registry,
        ),
        published=Counter(
            "rhime_events_published",
            "Events published",
            ["subject"],
            registry=registry,
        ),
        handling=Histogram(
            "rhime_event_handling_seconds",
            "Event handler latency",
            ["subject"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
    )


class _Backlogs(TypedDict):
    stream_usage: Gauge
    outbox_dead: Counter
    outbox_staged: Gauge
    outbox_oldest: Gauge
    downstream_pending: Gauge


def _backlogs(registry: CollectorRegistry) -> _Backlogs:
    """What piles up on the way to consumers: full streams, staged or set-aside outbox
    events, and what the component's consumers downstream have yet to take."""
    return _Backlogs(
        stream_usage=Gauge(
            "rhime_stream_usage_ratio",
            "How full a JetStream stream is, 0..1 of its max_bytes",
            ["stream"],
            registry=registry,
        ),
        outbox_dead=Counter(
            "rhime_outbox_dead_lettered",
            "Staged events the outbox relay could not publish and set aside",
            ["collection"],
            registry=registry,
        ),
        outbox_staged=Gauge(
            "rhime_outbox_staged_events",
            "Events staged in documents and not yet published, as the outbox relay last saw "
            "them (at most 500 documents a pass)",
            ["collection"],
            registry=registry,
        ),
        outbox_oldest=Gauge(
            "rhime_outbox_oldest_staged_seconds",
            "Age of the oldest event still staged, as the outbox relay last saw it (0: none)",
            ["collection"],
            registry=registry,
        ),
        downstream_pending=Gauge(
            "rhime_downstream_pending",
            "Events of the subjects this component publishes not yet delivered to a durable "
            "consumer of them, read from JetStream (a stopped consumer still shows its lag)",
            ["durable"],
            registry=registry,
        ),
    )


class _Jobs(TypedDict):
    cache: Counter
    job_queue: Gauge
    jobs: Histogram


def _jobs(registry: CollectorRegistry) -> _Jobs:
    """Caches and background jobs: the work done besides requests and events."""
    return _Jobs(
        cache=Counter(
            "rhime_cache_lookups",
            "Cache lookups by outcome (hit or miss), per cache",
            ["cache", "result"],
            registry=registry,
        ),
        job_queue=Gauge(
            "rhime_job_queue_depth",
            "Background jobs per state: queued, scheduled (retries waiting), started, failed",
            ["queue", "state"],
            registry=registry,
        ),
        jobs=Histogram(
            "rhime_job_seconds",
            "Background job duration, by job and outcome",
            ["job", "outcome"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        ),
    )


class _Stores(TypedDict):
    store_unavailable: Counter
    nats_disconnects: Counter


def _stores(registry: CollectorRegistry) -> _Stores:
    """Losing the stores and the bus."""
    return _Stores(
        store_unavailable=Counter(
            "rhime_store_unavailable",
            "Requests answered 503 and event attempts held because a store (mongodb, redis) "
            "could not be reached or did not answer in time",
            ["store"],
            registry=registry,
        ),
        nats_disconnects=Counter(
            "rhime_nats_disconnects",
            "Times the NATS connection was lost (the client reconnects by itself)",
            registry=registry,
        ),
    )
