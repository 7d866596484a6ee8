"""spec.monitoring: a PodMonitor, alert rules and Grafana dashboards, rendered purely and
applied on a real API server with and without the Prometheus Operator's CRDs; every query
parses as PromQL and reads only metrics the components export."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml
from kube import RD, ROOT, Kube, KubeError, condition, until
from operator_harness import Operator
from test_operator_kube import created

from rhime import catalogue
from rhime.kit import metrics
from rhime_operator import config, monitoring, names, render, spec, stores

TOOLS = ROOT / ".rhime" / "monitoring"
CRDS = sorted((TOOLS / "crds").glob("*.yaml"))
# What the reconciler adds to the Secrets it read: the seed of the stores' passwords.
SEED = {stores.secret_name(instance="rd"): {stores.SEED_KEY: "c2VlZA=="}}
# Metrics the rules read from outside the components: Prometheus's own and kube-state-metrics'.
EXTERNAL = {"up", "kube_cronjob_status_last_successful_time"}


def _objs(raw: dict[str, Any], *, crds: bool) -> dict[str, dict[str, Any]]:
    parsed = spec.parse(raw, name="rd")
    return {
        o["kind"] + "/" + o["metadata"]["name"]: o
        for o in render.render_platform(
            parsed, instance="rd", namespace="shop", secrets=SEED, monitoring_crds=crds
        )
        if o["metadata"]["labels"][names.LABEL_COMPONENT] == monitoring.COMPONENT
    }


def test_nothing_is_rendered_unless_enabled() -> None:
    assert _objs({}, crds=True) == {}


def test_without_the_crds_only_the_dashboards_are_rendered() -> None:
    objs = _objs({"monitoring": {"enabled": True}}, crds=False)
    assert set(objs) == {"ConfigMap/rd-dashboards"}
    assert objs["ConfigMap/rd-dashboards"]["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_with_the_crds_a_podmonitor_rules_and_a_scrape_policy_are_rendered() -> None:
    raw = {
        "monitoring": {
            "enabled": True,
            "labels": {"release": "kube-prometheus-stack"},
            "prometheusNamespace": "monitoring",
        }
    }
    objs = _objs(raw, crds=True)
    assert set(objs) == {
        "ConfigMap/rd-dashboards",
        "PodMonitor/rd-components",
        "PrometheusRule/rd-alerts",
        "NetworkPolicy/rd-metrics",
    }
    for obj in objs.values():
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    pod_monitor = objs["PodMonitor/rd-components"]["spec"]
    (selected,) = pod_monitor["selector"]["matchExpressions"]
    served = {c.name for c in catalogue.COMPONENTS if c.kind is not catalogue.Kind.CRON}
    assert set(selected["values"]) == served - {"user-graph-view"}  # gRPC: no /metrics
    assert pod_monitor["podMetricsEndpoints"][0]["port"] == "http"
    policy = objs["NetworkPolicy/rd-metrics"]["spec"]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"enabled": "yes"},
        {"enabled": True, "interval": "soon"},
        {"enabled": True, "prometheusNamespace": "Not_A_Namespace"},
        {"enabled": True, "labels": {"a": 1}},
    ],
)
def test_bad_monitoring_specs_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(spec.SpecError, match="monitoring"):
        spec.parse({"monitoring": raw}, name="rd")


def _exported() -> set[str]:
    """Every series name the components' metrics registry can produce."""
    names_: set[str] = set()
    for metric in metrics.create().registry.collect():
        base = metric.name
        names_ |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names_


def _queries() -> list[str]:
    rules = monitoring.alert_rules(instance="rd", namespace="shop")
    boards = monitoring.dashboards(instance="rd", namespace="shop")
    panels = [p for board in boards.values() for p in board["panels"]]
    return [r["expr"] for r in rules] + [t["expr"] for p in panels for t in p["targets"]]


def _selected(expr: promql_parser.Expr) -> set[str]:
    """The metric names an expression reads."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.add(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "args", "param"):
            child = getattr(node, attr, None)
            for item in child if isinstance(child, list) else [child]:
                if isinstance(item, promql_parser.Expr):
                    visit(item)

    visit(expr)
    return found


def test_every_query_parses_and_reads_only_exported_metrics() -> None:
    read: set[str] = set()
    for query in _queries():
        read |= _selected(promql_parser.parse(query))  # raises on a syntax error
    assert {"rhime_consumer_pending", "rhime_http_requests_total", "up"} <= read
    assert read - EXTERNAL <= _exported(), sorted(read - EXTERNAL - _exported())


def test_a_broken_query_is_caught() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum by (component (rate(rhime_http_requests_total[5m]))")


def test_each_alert_compares_with_its_threshold_and_names_a_severity() -> None:
    rules = {r["alert"]: r for r in monitoring.alert_rules(instance="rd", namespace="shop")}
    lag = promql_parser.parse(rules["RhimeConsumerLag"]["expr"])
    assert isinstance(lag, promql_parser.BinaryExpr)
    assert isinstance(lag.rhs, promql_parser.NumberLiteral)
    assert lag.rhs.val == monitoring.CONSUMER_LAG
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert re.fullmatch(r"\d+m", rule["for"])
    cron = {c.name for c in catalogue.COMPONENTS if c.kind is catalogue.Kind.CRON}
    missed = [
        r
        for r in monitoring.alert_rules(instance="rd", namespace="shop")
        if r["alert"] == "RhimeCronJobMissed"
    ]
    assert len(missed) == len(cron)


def test_dashboards_are_valid_json_with_unique_uids() -> None:
    data = _objs({"monitoring": {"enabled": True}}, crds=False)["ConfigMap/rd-dashboards"]["data"]
    boards = [json.loads(text) for text in data.values()]
    assert len({b["uid"] for b in boards}) == len(boards) == 3
    assert all(b["panels"] for b in boards)


async def _monitoring(kube: Kube, name: str, status: str) -> dict[str, Any] | None:
    body = await kube.get(RD, name)
    found = condition(body, "MonitoringReady")
    return body if found.get("status") == status else None


async def _exists(kube: Kube, resource: str, name: str) -> bool:
    return await kube.get(resource, name) is not None


async def _gone(kube: Kube, resource: str, name: str) -> bool:
    return await kube.get(resource, name) is None


async def _install(kube: Kube, crd: dict[str, Any]) -> None:
    """Create a CRD once per control plane and wait until it is served."""
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
    try:
        await kube.request("POST", path.rsplit("/", 1)[0], crd)
    except KubeError as exc:
        if exc.status != 409:
            raise

    async def established() -> bool:
        found = await kube.request("GET", path)
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    await until(established)


PODMONITORS = f"{monitoring.MONITORING_API}/podmonitors"
RULES = f"{monitoring.MONITORING_API}/prometheusrules"


async def test_monitoring_waits_for_the_crds_then_applies_and_prunes(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo", {"monitoring": {"enabled": True}})
    body = await until(lambda: _monitoring(kube, "demo", "False"))
    assert condition(body, "MonitoringReady")["reason"] == "PrometheusOperatorMissing"
    assert condition(body, "Stalled")["status"] == "False"  # nothing else suffers
    assert await kube.get("v1/configmaps", "demo-dashboards") is not None

    assert len(CRDS) == 2, "run scripts/bootstrap.sh --kube: it fetches the CRDs"
    for path in CRDS:
        await _install(kube, yaml.safe_load(path.read_text()))
    # The CRDs are looked for at each apply: a spec change is one.
    labels = {"release": "prometheus"}
    await kube.patch(RD, "demo", {"spec": {"monitoring": {"labels": labels}}})
    await until(lambda: _monitoring(kube, "demo", "True"))
    pod_monitor = await kube.get(PODMONITORS, "demo-components")
    assert pod_monitor is not None
    assert pod_monitor["metadata"]["labels"]["release"] == "prometheus"
    assert await kube.get(RULES, "demo-alerts") is not None

    await kube.patch(RD, "demo", {"spec": {"monitoring": {"enabled": False}}})
    await until(lambda: _gone(kube, PODMONITORS, "demo-components"))
    await until(lambda: _gone(kube, RULES, "demo-alerts"))
    await until(lambda: _gone(kube, "v1/configmaps", "demo-dashboards"))
    body = await kube.get(RD, "demo")
    assert condition(body, "MonitoringReady") == {}


def test_the_observability_doc_lists_every_metric_and_alert() -> None:
    doc = (ROOT / "docs" / "observability.md").read_text()
    alerts = {r["alert"] for r in monitoring.alert_rules(instance="rd", namespace="shop")}
    exported = {m.name for m in metrics.create().registry.collect()}
    missing = {
        name
        for name in alerts | exported
        if f"`{name}`" not in doc and f"`{name}_total`" not in doc
    }
    assert missing == set()


def _platform(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return render.render_platform(
        spec.parse(raw, name="rd"), instance="rd", namespace="shop", secrets=SEED
    )


def test_tracing_gives_every_component_the_endpoint_and_a_way_out_to_it() -> None:
    tracing = {
        "endpoint": "http://otel-collector.observability:4318/",
        "namespace": "observability",
    }
    objs = _platform({"monitoring": {"tracing": tracing}})  # without `enabled`: traces only
    envs = {
        o["metadata"]["name"]: o["data"]
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-env")
    }
    every = {c.name for c in catalogue.COMPONENTS}
    assert set(envs) == {config.configmap_name(instance="rd", component=c) for c in every}
    assert {e["RHIME_OTLP_ENDPOINT"] for e in envs.values()} == {
        "http://otel-collector.observability:4318"
    }
    policies = {
        o["metadata"]["labels"][names.LABEL_COMPONENT]: o["spec"]
        for o in objs
        if o["kind"] == "NetworkPolicy"
    }
    out = {
        "to": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
        ],
        "ports": [{"protocol": "TCP", "port": 4318}],
    }
    for component in every:
        assert out in policies[component]["egress"], component
    assert not any(o["metadata"]["labels"][names.LABEL_COMPONENT] == "monitoring" for o in objs)

    # in the platform's own namespace by default; https on 443 unless a port is given
    (same,) = {
        json.dumps(rule)
        for o in _platform({"monitoring": {"tracing": {"endpoint": "https://otel"}}})
        if o["kind"] == "NetworkPolicy" and "egress" in o["spec"]
        for rule in o["spec"]["egress"]
        if rule["ports"] == [{"protocol": "TCP", "port": 443}]
        and "namespaceSelector" in rule["to"][0]
    }
    assert json.loads(same)["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "shop"
    }


def test_without_tracing_no_component_exports_traces() -> None:
    for obj in _platform({"monitoring": {"enabled": True}}):
        if obj["kind"] == "ConfigMap":
            assert "RHIME_OTLP_ENDPOINT" not in obj.get("data", {})


@pytest.mark.parametrize(
    "tracing",
    [
        {},
        {"endpoint": ""},
        {"endpoint": "otel-collector:4318"},
        {"endpoint": "grpc://otel-collector:4317"},
        {"endpoint": "http://otel-collector:port"},
        {"endpoint": "http://otel-collector:4318?x=1"},
        {"endpoint": "http://otel-collector:4318", "namespace": "Not_A_Namespace"},
        "http://otel-collector:4318",
    ],
)
def test_bad_tracing_specs_are_refused(tracing: Any) -> None:
    with pytest.raises(spec.SpecError, match=r"monitoring\.tracing"):
        spec.parse({"monitoring": {"tracing": tracing}}, name="rd")
