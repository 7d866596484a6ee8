"""The example Secrets start every component: each component gets the environment its pod
would (the operator's rendering of an example RhimeDeployment, with the example Secrets behind
its `envFrom` and Secret references) and runs `rhime serve`'s start-up settings check."""

from __future__ import annotations

import base64
import os
import pathlib
from typing import Any

import pytest
import yaml

from rhime import catalogue, cli
from rhime_operator import names, render, spec, stores

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def example_secrets() -> dict[str, dict[str, str]]:
    """Every `kind: Secret` of the examples: name -> decoded data (stringData wins, as the
    API server merges it over data)."""
    found: dict[str, dict[str, str]] = {}
    for _, doc in _documents():
        if doc.get("kind") == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
            data |= {k: str(v) for k, v in (doc.get("stringData") or {}).items()}
            found[doc["metadata"]["name"]] = data
    return found


def _parsed(doc: dict[str, Any]) -> spec.Spec:
    return spec.parse(doc.get("spec"), name=doc["metadata"]["name"])


def deployments_on_example_secrets() -> list[tuple[str, dict[str, Any]]]:
    """(file, RhimeDeployment) of the examples whose Secrets are all example Secrets."""
    available = set(example_secrets())
    return [
        (file, doc)
        for file, doc in _documents()
        if doc.get("kind") == names.KIND and spec.referenced_secrets(_parsed(doc)) <= available
    ]


def pod_env(
    doc: dict[str, Any], *, component: catalogue.Component, secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment of the component's container as the operator renders it for `doc`:
    the envFrom sources in order (a later one wins), then the explicit env."""
    instance = doc["metadata"]["name"]
    encoded = {
        name: {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        for name, data in secrets.items()
    }
    objs = {
        render.key(o): o
        for o in render.render_platform(
            _parsed(doc),
            instance=instance,
            namespace="default",
            secrets={
                **encoded,
                **{stores.secret_name(instance=instance): {stores.SEED_KEY: "c2VlZA=="}},
            },
        )
    }
    if component.kind is catalogue.Kind.CRON:
        cronjob = objs["CronJob", names.child_name(instance, component.name)]
        template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    else:
        template = objs["Deployment", names.child_name(instance, component.name)]["spec"][
            "template"
        ]
    (container,) = template["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env |= objs["ConfigMap", source["configMapRef"]["name"]]["data"]
        else:
            env |= secrets[source["secretRef"]["name"]]
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            env[item["name"]] = item["value"]
        elif ref["name"] in secrets:
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        else:  # a Secret the operator renders itself (the stores' URLs)
            rendered = objs["Secret", ref["name"]]["data"][ref["key"]]
            env[item["name"]] = base64.b64decode(rendered).decode()
    return env


def start_up_errors(
    component: catalogue.Component,
    env: dict[str, str],
    *,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str | None:
    """What `rhime serve <component>` reports before it exits, or None if it would start."""
    for key in list(os.environ):
        if key.startswith(("RHIME_", "AWS_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # load_settings sets these when missing; set through monkeypatch they are undone after
    monkeypatch.setenv("RHIME_COMPONENT", component.name)
    if component.port:
        monkeypatch.setenv("RHIME_PORT", str(component.port))
    capsys.readouterr()
    try:
        cli.load_settings(component)
    except SystemExit:
        return capsys.readouterr().err
    return None


DEV_LOOP = deployments_on_example_secrets()


def test_the_dev_loop_runs_on_example_secrets_holding_every_key() -> None:
    assert "dev.yaml" in [file for file, _ in DEV_LOOP]
    secrets = example_secrets()
    for _, doc in DEV_LOOP:
        parsed = _parsed(doc)
        for secret in catalogue.Secret:
            held = secrets[parsed.secret_name(secret)]
            assert set(catalogue.SECRET_KEYS[secret]) <= set(held), secret


@pytest.mark.parametrize("component", catalogue.COMPONENTS, ids=lambda c: c.name)
@pytest.mark.parametrize("doc", [doc for _, doc in DEV_LOOP], ids=[file for file, _ in DEV_LOOP])
def test_every_component_starts_with_the_example_secrets(
    doc: dict[str, Any],
    component: catalogue.Component,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = pod_env(doc, component=component, secrets=example_secrets())
    assert start_up_errors(component, env, monkeypatch=monkeypatch, capsys=capsys) is None


@pytest.mark.parametrize(
    ("component", "key", "value"),
    [
        ("gateway", "RHIME_INTERNAL_SECRET", "dev-internal-secret-change-me"),  # 29 characters
        ("auth", "RHIME_ACCESS_TOKEN_SECRET", "too-short"),
        ("spotify", "RHIME_ENCRYPTION_KEY", "x" * 44),  # long enough, but no Fernet key
    ],
)
def test_the_check_rejects_a_bad_secret_value(
    component: str,
    key: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secrets = example_secrets()
    (holder,) = [name for name, data in secrets.items() if key in data]
    secrets[holder] = {**secrets[holder], key: value}
    (_, dev) = next(entry for entry in DEV_LOOP if entry[0] == "dev.yaml")
    env = pod_env(dev, component=catalogue.get(component), secrets=secrets)
    errors = start_up_errors(catalogue.get(component), env, monkeypatch=monkeypatch, capsys=capsys)
    assert errors is not None
    assert f"{key}:" in errors
