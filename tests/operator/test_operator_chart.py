"""The Helm chart: lints strictly, renders, validates, and carries the CRD unchanged."""

from __future__ import annotations

import copy
import pathlib
import re
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from rhime_operator import names

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rhime-operator"
CRD = ROOT / "crds" / "rhimedeployments.rhime.dev.yaml"


def _render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(CHART)
    rendered = chart.render(values or {}, name="rhime", namespace="rhime-system", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def test_chart_crd_is_identical_to_the_source() -> None:
    assert (CHART / "crds" / CRD.name).read_bytes() == CRD.read_bytes()


def test_chart_lints_strictly() -> None:
    report = helm_python.lint(CHART, strict=True, kube_version="v1.29.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", ["1.29", "1.37"])
def test_rendered_chart_validates(version: str) -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    docs = _render({"rhimeDeployment": {"enabled": True, "spec": {"logLevel": "DEBUG"}}})
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "Deployment",
        "NetworkPolicy",
        names.KIND,
        "Role",  # the watched namespace
        "Role",  # the release's own, where its RhimeDeployment is
        "RoleBinding",
        "RoleBinding",
        "ServiceAccount",
    ]
    for doc in docs:
        if doc["kind"] == names.KIND:
            jsonschema.validate(doc, schema)
        else:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_optional_rhimedeployment_is_off_by_default() -> None:
    assert names.KIND not in {d["kind"] for d in _render()}


def test_operator_runs_the_handlers_module_as_non_root() -> None:
    (deployment,) = [d for d in _render() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["kopf", "run"]
    assert container["command"][-2:] == ["-m", "rhime_operator.handlers"]
    assert "--namespace=rhime" in container["command"]  # one namespace unless told otherwise
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["image"] == "ghcr.io/rhime/rhime:0.1.0"


def test_rbac_is_least_privilege() -> None:
    (role,) = [d for d in _render({"watchNamespaces": []}) if d["kind"] == "ClusterRole"]
    rules = role["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
    secrets = [r for r in rules if "secrets" in r["resources"]]
    # read the Secrets it is given, write its own stores Secret; never list or watch them
    assert secrets == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch"]}
    ]
    granted = {res for r in rules for res in r["resources"]}
    for _, plural in names.CHILD_KINDS.values():
        assert plural in granted
    assert "roles" not in granted
    assert "clusterroles" not in granted


def test_each_watched_namespace_gets_a_role_there_and_no_cluster_grants() -> None:
    docs = _render({"watchNamespaces": ["shop", "studio"]})
    kinds = {d["kind"] for d in docs}
    assert "ClusterRole" not in kinds
    assert "ClusterRoleBinding" not in kinds
    roles = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"shop", "studio"}
    for binding in bindings.values():
        assert binding["subjects"][0]["namespace"] == "rhime-system"
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[binding["metadata"]["namespace"]]["metadata"]["name"],
        }
    granted = {res for r in roles["shop"]["rules"] for res in r["resources"]}
    assert "namespaces" not in granted
    assert "customresourcedefinitions" not in granted
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"--namespace=shop", "--namespace=studio"} <= set(container["command"])
    assert "--all-namespaces" not in container["command"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RHIME_OPERATOR_WATCH_NAMESPACES"] == "shop,studio"


def test_the_charts_own_rhimedeployment_namespace_is_watched_too() -> None:
    docs = _render({"rhimeDeployment": {"enabled": True}})
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"} == {
        "rhime",
        "rhime-system",
    }


def test_values_schema_rejects_bad_values() -> None:
    with pytest.raises(helm_python.HelmError):
        _render({"operator": {"logLevel": "loud"}})
    with pytest.raises(helm_python.HelmError):
        _render({"unknown": 1})


def test_every_value_is_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    documented = 0
    for index, line in enumerate(lines):
        match = re.match(r"^( {0,2})([A-Za-z]\w*):", line)
        if match:
            assert lines[index - 1].lstrip().startswith("#"), line
            documented += 1
    assert documented >= len(values)


def test_values_schema_accepts_the_defaults() -> None:
    schema = (CHART / "values.schema.json").read_text()
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(copy.deepcopy(defaults), yaml.safe_load(schema))


def test_the_operator_may_connect_only_to_dns_and_the_kubernetes_api() -> None:
    (policy,) = [d for d in _render() if d["kind"] == "NetworkPolicy"]
    (deployment,) = [d for d in _render() if d["kind"] == "Deployment"]
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == []
    dns, api = spec["egress"]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert [p["port"] for p in api["ports"]] == [443, 6443]
    narrowed = _render(
        {"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [6443]}}}
    )
    (policy,) = [d for d in narrowed if d["kind"] == "NetworkPolicy"]
    _, api = policy["spec"]["egress"]
    assert api == {
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
        "ports": [{"protocol": "TCP", "port": 6443}],
    }
    off = _render({"networkPolicy": {"enabled": False}})
    assert "NetworkPolicy" not in {d["kind"] for d in off}
