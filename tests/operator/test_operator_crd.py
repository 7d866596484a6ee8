"""The CRD: structural, valid for Kubernetes, and the examples validate against its schema."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from rhime_operator import names, spec, status

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "rhimedeployments.rhime.dev.yaml"
EXAMPLES = ROOT / "examples"


def _crd() -> dict[str, Any]:
    return dict(yaml.safe_load(CRD.read_text()))


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields rejected, as the API server prunes them silently."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in node
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def _validator() -> jsonschema.Draft7Validator:
    version = _crd()["spec"]["versions"][0]
    return jsonschema.Draft7Validator(_closed(version["schema"]["openAPIV3Schema"]))


def _rd_examples() -> list[pathlib.Path]:
    return sorted(
        p
        for p in EXAMPLES.glob("*.yaml")
        if any(d and d.get("kind") == names.KIND for d in yaml.safe_load_all(p.read_text()))
    )


@pytest.mark.parametrize("version", ["1.29", "1.37"])
def test_crd_validates_for_kubernetes(version: str) -> None:
    kubernetes_validate.validate(_crd(), version, strict=True)


def test_crd_names_printer_columns_and_status_subresource() -> None:
    crd = _crd()
    assert crd["spec"]["group"] == names.GROUP
    assert crd["spec"]["names"]["plural"] == names.PLURAL
    assert crd["spec"]["names"]["kind"] == names.KIND
    assert crd["spec"]["scope"] == "Namespaced"
    assert "rd" in crd["spec"]["names"]["shortNames"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == names.VERSION
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Components"] == ".status.componentsReady"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_crd_declares_every_status_field_the_operator_writes() -> None:
    parsed = spec.parse({}, name="rd")
    components, _ = status.expected_workloads(parsed)
    workloads = [
        status.Workload(component=c, kind="Deployment", ready=0, desired=1) for c in components
    ]
    written = status.render_status(
        generation=1, spec=parsed, workloads=workloads, previous=[], now="2026-01-01T00:00:00Z"
    )
    schema = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    jsonschema.Draft7Validator(
        _closed({"type": "object", "properties": {"status": schema, "metadata": {}}})
    ).validate({"status": written})


@pytest.mark.parametrize("path", _rd_examples(), ids=lambda p: p.name)
def test_examples_validate_against_the_crd_and_parse(path: pathlib.Path) -> None:
    validator = _validator()
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == names.KIND:
            validator.validate(doc)
            spec.parse(doc["spec"], name=doc["metadata"]["name"])


@pytest.mark.parametrize(
    "bad",
    [
        {"spec": {"components": {"feed": {"replicas": -1}}}},
        {"spec": {"image": {"pullPolicy": "Sometimes"}}},
        {"spec": {"gateway": {"service": {"type": "ExternalName"}}}},
        {"spec": {"infrastructure": {"mongo": {"external": {}}}}},
        {"spec": {"paused": "yes"}},
        {"spec": {"unknownField": 1}},
        {"spec": {"logLevel": "LOUD"}},
        {"spec": {"monitoring": {"tracing": {}}}},
        {"spec": {"monitoring": {"tracing": {"endpoint": "otel-collector:4318"}}}},
    ],
)
def test_invalid_resources_fail_the_crd_schema(bad: dict[str, Any]) -> None:
    doc = {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": {"name": "x"}, **bad}
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(doc)
