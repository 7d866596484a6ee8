"""What a Prometheus Operator needs to watch a platform: a PodMonitor, alert rules, a policy
that lets Prometheus scrape, and Grafana dashboards; rendered purely.

Metric names are the components' own (`rhime.kit.metrics`); the rules and panels name no user
or post, so every series stays bounded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rhime import catalogue
from rhime_operator import names
from rhime_operator import spec as spec_mod

MONITORING_API = "monitoring.coreos.com/v1"
# The kinds rendered when the Prometheus Operator's CRDs exist: kind -> (apiVersion, plural).
KINDS: Mapping[str, tuple[str, str]] = {
    "PodMonitor": (MONITORING_API, "podmonitors"),
    "PrometheusRule": (MONITORING_API, "prometheusrules"),
}
COMPONENT = "monitoring"
# What Grafana's dashboard sidecar looks for (kube-prometheus-stack's default).
DASHBOARD_LABEL = {"grafana_dashboard": "1"}

# Labels Prometheus puts on every scraped series, from the pod's labels.
_COMPONENT = "component"
_INSTANCE = "rhime_instance"

# Alert thresholds; each rule's `for` keeps a blip from paging.
ERROR_RATIO = 0.05
P99_SECONDS = 1.0
CONSUMER_LAG = 1000
STREAM_FULL = 0.8
OUTBOX_OLDEST_SECONDS = 300
JOB_QUEUE = 1000


def _meta(spec: spec_mod.Spec, *, name: str, instance: str, namespace: str) -> dict[str, Any]:
    meta = names.metadata(
        name=names.child_name(instance, name),
        namespace=namespace,
        instance=instance,
        component=COMPONENT,
    )
    meta["labels"] |= dict(spec.monitoring.labels)
    return meta


def scraped(component: catalogue.Component) -> bool:
    """Components whose pods serve `/metrics` on their `http` port."""
    return component.kind in (catalogue.Kind.HTTP, catalogue.Kind.WORKER)


def render_podmonitor(spec: spec_mod.Spec, *, instance: str, namespace: str) -> dict[str, Any]:
    relabel = [
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{_label(names.LABEL_COMPONENT)}"],
            "targetLabel": _COMPONENT,
        },
        {
            "sourceLabels": [f"__meta_kubernetes_pod_label_{_label(names.LABEL_INSTANCE)}"],
            "targetLabel": _INSTANCE,
        },
    ]
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": _meta(spec, name="components", instance=instance, namespace=namespace),
        "spec": {
            "selector": {
                "matchLabels": {
                    names.LABEL_INSTANCE: instance,
                    names.LABEL_MANAGED_BY: names.MANAGED_BY,
                },
                "matchExpressions": [
                    {
                        "key": names.LABEL_COMPONENT,
                        "operator": "In",
                        "values": sorted(c.name for c in catalogue.COMPONENTS if scraped(c)),
                    }
                ],
            },
            "podMetricsEndpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": spec.monitoring.interval,
                    "relabelings": relabel,
                }
            ],
        },
    }


def _label(name: str) -> str:
    """A Kubernetes label as Prometheus's service discovery spells it."""
    return "".join(c if c.isalnum() else "_" for c in name)


def alert_rules(*, instance: str, namespace: str) -> list[dict[str, Any]]:
    """The alerts, as Prometheus rule objects (also checked by `promtool` in the tests)."""
    sel = f'{_INSTANCE}="{instance}",namespace="{namespace}"'
    by = f"({_COMPONENT})"

    def rule(alert: str, expr: str, *, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity},
            "annotations": {"summary": summary},
        }

    cron = {c.name: c for c in catalogue.COMPONENTS if c.kind is catalogue.Kind.CRON}
    return [
        rule(
            "RhimeComponentDown",
            f"up{{{sel}}} == 0",
            for_="5m",
            severity="critical",
            summary="{{ $labels.component }} ({{ $labels.pod }}) has not answered a scrape "
            "for 5 minutes",
        ),
        rule(
            "RhimeErrorRatio",
            f'sum by {by} (rate(rhime_http_requests_total{{{sel},status=~"5.."}}[5m]))'
            f" / sum by {by} (rate(rhime_http_requests_total{{{sel}}}[5m])) > {ERROR_RATIO}",
            for_="10m",
            severity="warning",
            summary=f"{{{{ $labels.component }}}} answers more than {ERROR_RATIO:.0%} of "
            "requests with a server error",
        ),
        rule(
            "RhimeLatencyP99",
            f"histogram_quantile(0.99, sum by ({_COMPONENT}, le) "
            f"(rate(rhime_http_request_seconds_bucket{{{sel}}}[5m]))) > {P99_SECONDS}",
            for_="10m",
            severity="warning",
            summary=f"{{{{ $labels.component }}}} p99 latency is above {P99_SECONDS:g} s",
        ),
        rule(
            "RhimeConsumerLag",
            # the consumer's own reading, or its publishers' (which outlives a stopped consumer)
            f"max by (durable) ({_lag(sel)}) > {CONSUMER_LAG}",
            for_="10m",
            severity="warning",
            summary=f"{{{{ $labels.durable }}}} is more than {CONSUMER_LAG} events behind",
        ),
        rule(
            "RhimeDeadLetters",
            f"sum by ({_COMPONENT}, subject) "
            f"(increase(rhime_events_dead_lettered_total{{{sel}}}[15m])) > 0",
            for_="0m",
            severity="warning",
            summary="events of {{ $labels.subject }} were given up on and dead-lettered",
        ),
        rule(
            "RhimeStreamNearLimit",
            f"max by (stream) (rhime_stream_usage_ratio{{{sel}}}) > {STREAM_FULL}",
            for_="10m",
            severity="warning",
            summary=f"the {{{{ $labels.stream }}}} stream is over {STREAM_FULL:.0%} of its "
            "max_bytes: its oldest events go, or new ones wait in the outbox",
        ),
        rule(
            "RhimeOutboxDeadLetters",
            f"sum by ({_COMPONENT}, collection) "
            f"(increase(rhime_outbox_dead_lettered_total{{{sel}}}[15m])) > 0",
            for_="0m",
            severity="warning",
            summary="staged events of {{ $labels.collection }} could not be published and "
            "were set aside",
        ),
        rule(
            "RhimeOutboxBacklog",
            f"max by ({_COMPONENT}, collection) (rhime_outbox_oldest_staged_seconds{{{sel}}}) "
            f"> {OUTBOX_OLDEST_SECONDS}",
            for_="5m",
            severity="warning",
            summary=f"events of {{{{ $labels.collection }}}} have waited in the outbox for over "
            f"{OUTBOX_OLDEST_SECONDS // 60} minutes: NATS is not taking them",
        ),
        rule(
            "RhimeJobQueueBacklog",
            f'max by (queue) (rhime_job_queue_depth{{{sel},state="queued"}}) > {JOB_QUEUE}',
            for_="60m",
            severity="warning",
            summary=f"more than {JOB_QUEUE} {{{{ $labels.queue }}}} jobs have been waiting for "
            "an hour: the recommendation workers do not keep up",
        ),
        *(
            rule(
                "RhimeCronJobMissed",
                f'time() - kube_cronjob_status_last_successful_time{{namespace="{namespace}",'
                f'cronjob="{names.child_name(instance, name)}"}} > {_missed_after(c)}',
                for_="0m",
                severity="warning",
                summary=f"{name} has not succeeded on schedule ({c.schedule})",
            )
            for name, c in sorted(cron.items())
        ),
    ]


def _lag(sel: str) -> str:
    """Consumer lag series: each consumer's own and its publishers' reading of it."""
    return f"rhime_consumer_pending{{{sel}}} or rhime_downstream_pending{{{sel}}}"


def _missed_after(component: catalogue.Component) -> int:
    """Seconds without a success after which a CronJob counts as missed: two periods."""
    schedule = (component.schedule or "0 0 * * *").split()
    weekly = schedule[4] != "*"
    return (2 * 7 * 86400) if weekly else (2 * 86400)


def render_prometheusrule(spec: spec_mod.Spec, *, instance: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": _meta(spec, name="alerts", instance=instance, namespace=namespace),
        "spec": {
            "groups": [
                {"name": "rhime", "rules": alert_rules(instance=instance, namespace=namespace)}
            ]
        },
    }


def render_scrape_policy(spec: spec_mod.Spec, *, instance: str, namespace: str) -> dict[str, Any]:
    """Let Prometheus (in its namespace) reach every component's metrics port."""
    source: dict[str, Any] = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": spec.monitoring.prometheus_namespace}
        }
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, name="metrics", instance=instance, namespace=namespace),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    names.LABEL_INSTANCE: instance,
                    names.LABEL_MANAGED_BY: names.MANAGED_BY,
                }
            },
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [source], "ports": [{"port": "http", "protocol": "TCP"}]}],
        },
    }


def _panel(title: str, exprs: Mapping[str, str], *, unit: str, x: int, y: int) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (legend, expr) in enumerate(exprs.items())
        ],
    }


def dashboards(*, instance: str, namespace: str) -> dict[str, dict[str, Any]]:
    """Grafana dashboards by file name: the platform, its requests, its events."""
    sel = f'{_INSTANCE}="{instance}",namespace="{namespace}"'
    by = f"sum by ({_COMPONENT})"
    rate = "[5m]"
    requests = f"rhime_http_requests_total{{{sel}}}"
    errors = f'rhime_http_requests_total{{{sel},status=~"5.."}}'
    buckets = f"rhime_http_request_seconds_bucket{{{sel}}}"

    def board(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "uid": f"rhime-{instance}-{uid}"[:40],
            "title": f"Rhime {instance}: {title}",
            "tags": ["rhime"],
            "schemaVersion": 39,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "30s",
            "panels": panels,
        }

    overview = board(
        "overview",
        "overview",
        [
            _panel(
                "Components up", {"{{component}}": f"{by} (up{{{sel}}})"}, unit="short", x=0, y=0
            ),
            _panel(
                "Requests per second",
                {"all": f"sum(rate({requests}{rate}))", "5xx": f"sum(rate({errors}{rate}))"},
                unit="reqps",
                x=12,
                y=0,
            ),
            _panel(
                "Consumer lag",
                {"{{durable}}": f"max by (durable) ({_lag(sel)})"},
                unit="short",
                x=0,
                y=8,
            ),
            _panel(
                "Dead letters (15 min)",
                {
                    "{{subject}}": "sum by (subject) "
                    f"(increase(rhime_events_dead_lettered_total{{{sel}}}[15m]))"
                },
                unit="short",
                x=12,
                y=8,
            ),
        ],
    )
    red = board(
        "requests",
        "requests per component",
        [
            _panel(
                "Rate", {"{{component}}": f"{by} (rate({requests}{rate}))"}, unit="reqps", x=0, y=0
            ),
            _panel(
                "Errors (5xx ratio)",
                {"{{component}}": f"{by} (rate({errors}{rate})) / {by} (rate({requests}{rate}))"},
                unit="percentunit",
                x=12,
                y=0,
            ),
            _panel(
                "Duration p99",
                {
                    "{{component}}": f"histogram_quantile(0.99, sum by ({_COMPONENT}, le) "
                    f"(rate({buckets}{rate})))"
                },
                unit="s",
                x=0,
                y=8,
            ),
            _panel(
                "Duration p50",
                {
                    "{{component}}": f"histogram_quantile(0.5, sum by ({_COMPONENT}, le) "
                    f"(rate({buckets}{rate})))"
                },
                unit="s",
                x=12,
                y=8,
            ),
        ],
    )
    events = board(
        "events",
        "events, outbox, caches and jobs",
        [
            _panel(
                "Events published per second",
                {
                    "{{subject}}": "sum by (subject) "
                    f"(rate(rhime_events_published_total{{{sel}}}{rate}))"
                },
                unit="ops",
                x=0,
                y=0,
            ),
            _panel(
                "Events handled per second",
                {
                    "{{subject}} {{outcome}}": "sum by (subject, outcome) "
                    f"(rate(rhime_events_consumed_total{{{sel}}}{rate}))"
                },
                unit="ops",
                x=12,
                y=0,
            ),
            _panel(
                "Redeliveries per second",
                {
                    "{{durable}}": "sum by (durable) "
                    f"(rate(rhime_events_redelivered_total{{{sel}}}{rate}))"
                },
                unit="ops",
                x=0,
                y=8,
            ),
            _panel(
                "Handling p99",
                {
                    "{{subject}}": "histogram_quantile(0.99, sum by (subject, le) "
                    f"(rate(rhime_event_handling_seconds_bucket{{{sel}}}{rate})))"
                },
                unit="s",
                x=12,
                y=8,
            ),
            _panel(
                "Outbox: events staged, not yet published",
                {"{{collection}}": f"sum by (collection) (rhime_outbox_staged_events{{{sel}}})"},
                unit="short",
                x=0,
                y=16,
            ),
            _panel(
                "Outbox: oldest staged event",
                {
                    "{{collection}}": "max by (collection) "
                    f"(rhime_outbox_oldest_staged_seconds{{{sel}}})"
                },
                unit="s",
                x=12,
                y=16,
            ),
            _panel(
                "Cache hit ratio (timelines, posts, author cards)",
                {
                    "{{cache}}": "sum by (cache) "
                    f'(rate(rhime_cache_lookups_total{{{sel},result="hit"}}{rate})) '
                    f"/ sum by (cache) (rate(rhime_cache_lookups_total{{{sel}}}{rate}))"
                },
                unit="percentunit",
                x=0,
                y=24,
            ),
            _panel(
                "Job queue depth",
                {"{{state}}": f"max by (state) (rhime_job_queue_depth{{{sel}}})"},
                unit="short",
                x=12,
                y=24,
            ),
            _panel(
                "Job duration p99",
                {
                    "{{job}}": "histogram_quantile(0.99, sum by (job, le) "
                    f"(rate(rhime_job_seconds_bucket{{{sel}}}{rate})))"
                },
                unit="s",
                x=0,
                y=32,
            ),
            _panel(
                "Jobs failed per second",
                {
                    "{{job}}": "sum by (job) "
                    f'(rate(rhime_job_seconds_count{{{sel},outcome="failed"}}{rate}))'
                },
                unit="ops",
                x=12,
                y=32,
            ),
        ],
    )
    return {
        "rhime-overview.json": overview,
        "rhime-requests.json": red,
        "rhime-events.json": events,
    }


def render_dashboards(spec: spec_mod.Spec, *, instance: str, namespace: str) -> dict[str, Any]:
    meta = _meta(spec, name="dashboards", instance=instance, namespace=namespace)
    meta["labels"] |= DASHBOARD_LABEL
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            name: json.dumps(board, indent=1, sort_keys=True)
            for name, board in dashboards(instance=instance, namespace=namespace).items()
        },
    }


def render(
    spec: spec_mod.Spec, *, instance: str, namespace: str, crds: bool
) -> list[dict[str, Any]]:
    """The monitoring objects of a platform; the PodMonitor and rules only with the CRDs."""
    if not spec.monitoring.enabled:
        return []
    place = {"instance": instance, "namespace": namespace}
    objs: list[dict[str, Any]] = []
    if spec.monitoring.prometheus_namespace:
        objs.append(render_scrape_policy(spec, **place))
    if spec.monitoring.dashboards:
        objs.append(render_dashboards(spec, **place))
    if crds:
        objs.append(render_podmonitor(spec, **place))
        if spec.monitoring.alerts:
            objs.append(render_prometheusrule(spec, **place))
    return objs
