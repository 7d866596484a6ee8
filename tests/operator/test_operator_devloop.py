"""What can be checked of the dev loop without Docker: the files agree with each other."""

from __future__ import annotations

import ast
import pathlib
import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from rhime_operator import render, spec, stores

ROOT = pathlib.Path(__file__).resolve().parents[2]
TILTFILE = (ROOT / "Tiltfile").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_tiltfile_is_valid_starlark_syntax_and_names_existing_paths() -> None:
    ast.parse(TILTFILE)  # Starlark as used here is a subset of Python's grammar
    paths = set(
        re.findall(
            r"'((?:examples|charts|crds|services|operator)/[^']*|kind-config\.yaml)'", TILTFILE
        )
    )
    assert paths
    for path in paths:
        assert any(ROOT.glob(path)), path


def test_kind_config_maps_the_dev_gateway_node_port() -> None:
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert kind["kind"] == "Cluster"
    assert f"CLUSTER = '{kind['name']}'" in TILTFILE
    dev = yaml.safe_load((ROOT / "examples" / "dev.yaml").read_text())
    node_port = dev["spec"]["gateway"]["service"]["nodePort"]
    mapped = [m["containerPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])]
    assert node_port in mapped


def test_tilt_builds_dockerfile_targets_and_syncs_into_the_image_paths() -> None:
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, flags=re.MULTILINE))
    for target in re.findall(r"target='([^']+)'", TILTFILE):
        assert target in stages
    for _, remote in re.findall(r"sync\('([^']+)', '([^']+)'\)", TILTFILE):
        assert remote.startswith("/app/")
        assert remote.split("/")[2] in ("services", "operator")
    assert "COPY services ./services" in DOCKERFILE
    assert "COPY operator ./operator" in DOCKERFILE


def test_image_runs_as_non_root_and_the_dev_image_is_tilts() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert users[-1] == "10001:10001"
    assert DOCKERFILE.rstrip().splitlines()[-1].startswith("FROM runtime AS production")
    dev = yaml.safe_load((ROOT / "examples" / "dev.yaml").read_text())
    assert f"'{dev['spec']['image']['repository']}'" in TILTFILE
    assert dev["spec"]["development"]["liveReload"] is True


FORWARDS = re.findall(r"port-forward svc/([-a-z0-9]+) (\d+):(\d+)", TILTFILE)


def _dev_platform() -> dict[tuple[str, str], dict[str, Any]]:
    dev = yaml.safe_load((ROOT / "examples" / "dev.yaml").read_text())
    namespace = re.search(r"^NAMESPACE = '([^']+)'$", TILTFILE, flags=re.MULTILINE)
    assert namespace
    instance = dev["metadata"]["name"]
    parsed = spec.parse(dev["spec"], name=instance)
    objs = render.render_platform(
        parsed,
        instance=instance,
        namespace=namespace.group(1),
        secrets={stores.secret_name(instance=instance): {stores.SEED_KEY: "c2VlZA=="}},
    )
    return {render.key(o): o for o in objs}


def test_every_service_the_tiltfile_forwards_is_rendered_for_dev_yaml_on_its_port() -> None:
    objs = _dev_platform()
    assert {name for name, _, _ in FORWARDS} == {"rhime-gateway", "rhime-fake-spotify"}
    for name, _, remote in FORWARDS:
        service = objs["Service", name]
        assert int(remote) in [p["port"] for p in service["spec"]["ports"]]


def test_the_browser_urls_of_dev_yaml_are_the_ports_tilt_forwards() -> None:
    objs = _dev_platform()
    local = {name: int(port) for name, port, _ in FORWARDS}
    dev = yaml.safe_load((ROOT / "examples" / "dev.yaml").read_text())
    assert dev["spec"]["development"]["standIns"] is True
    assert urlsplit(dev["spec"]["publicUrl"]).port == local["rhime-gateway"]
    spotify = objs["ConfigMap", "rhime-spotify-env"]["data"]
    consent = urlsplit(spotify["RHIME_SPOTIFY_PUBLIC_ACCOUNTS_URL"])
    assert consent.hostname == "localhost"
    assert consent.port == local["rhime-fake-spotify"]


def test_the_secrets_the_tiltfile_waits_for_are_the_ones_it_applies() -> None:
    applied = set(re.findall(r"'(examples/[^']+\.yaml)'", TILTFILE))
    secrets = {
        doc["metadata"]["name"]
        for path in applied
        for doc in yaml.safe_load_all((ROOT / path).read_text())
        if doc and doc.get("kind") == "Secret"
    }
    waited = set(re.findall(r"'([-a-z0-9]+):secret'", TILTFILE))
    assert waited
    assert waited == secrets
