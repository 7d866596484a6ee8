"""Prometheus metrics, one registry per app so that apps built in one process stay apart."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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


def create() -> Metrics:
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
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
    )
