"""Rhime's image built without Docker: its settings are the Dockerfile's, its layers split
base / venv / app, it runs (chroot as uid 10001), and a code edit rebuilds only the app layer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from rhime import catalogue
from rhime.runtime import image, imagearchive
from tests.image.chroot import needs_root, run
from tests.image.dockerfacts import REPO, env_of, final, runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), needs_root]


def test_archive_names_the_image_with_the_dockerfiles_settings(
    production: imagearchive.Built,
) -> None:
    manifest, config = imagearchive.read(production.path)
    assert manifest["RepoTags"] == [image.TAGS["production"]] == ["rhime.local/rhime:latest"]
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in production.layers]
    settings = config["config"]
    assert settings["User"] == final("production", "USER") == "10001:10001"
    assert settings["WorkingDir"] == final("production", "WORKDIR")
    assert settings["Cmd"] == json.loads(final("production", "CMD"))
    assert "Entrypoint" not in settings
    assert set(settings["ExposedPorts"]) == {f"{final('production', 'EXPOSE')}/tcp"}
    env = dict(entry.split("=", 1) for entry in settings["Env"])
    assert env_of(["runtime", "production"]).items() <= env.items()
    assert env["PATH"].startswith("/app/.venv/bin:")


def test_layers_split_base_venv_and_app(production: imagearchive.Built) -> None:
    base, venv, app = (set(imagearchive.layer_names(production.path, i)) for i in range(3))
    assert {"usr/bin/python3.11", "etc/passwd"} <= base
    assert not [n for n in base if n.startswith("app")]
    assert {"app/.venv/bin/python", "app/.venv/pyvenv.cfg"} <= venv
    assert not [n for n in venv if n.startswith(("app/services", "app/operator"))]
    assert {
        "app/pyproject.toml",
        "app/uv.lock",
        "app/README.md",
        "app/services/rhime/cli.py",
        "app/services/rhime/__pycache__/cli.cpython-311.pyc",
        "app/services/rhime/graphview/proto/graphview_pb2.py",
        "app/operator/rhime_operator/handlers.py",
        "app/.venv/bin/rhime",
    } <= app
    assert all(name == "app" or name.startswith("app/") for name in venv | app)
    assert not [n for n in app if n.startswith("app/tests") or n.startswith("app/.rhime")]


def test_components_run_from_the_unpacked_image_as_its_user(
    production_root: tuple[Path, dict[str, Any]],
) -> None:
    root, config = production_root
    result = run(root, config, ["rhime", "components"])
    assert result.returncode == 0, result.stdout
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == [component.name for component in catalogue.COMPONENTS]
    who = run(root, config, ["id", "-u"])
    assert who.stdout.strip() == "10001"


def test_generated_modules_import_without_grpc_tools_and_code_is_read_only(
    production_root: tuple[Path, dict[str, Any]],
) -> None:
    root, config = production_root
    check = (
        "import importlib.util, sys, rhime.graphview.proto.graphview_pb2_grpc, rhime_operator; "
        "assert importlib.util.find_spec('grpc_tools') is None; "
        "print(sys.prefix, sys.version_info[:2])"
    )
    result = run(root, config, ["python", "-c", check])
    assert result.returncode == 0, result.stdout
    assert result.stdout.split()[0] == "/app/.venv"
    assert run(root, config, ["touch", "/app/services/x"]).returncode != 0


def _copy_context(dest: Path) -> None:
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("services", "operator"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))


def _member(archive: Path, layer: int, name: str) -> bytes:
    with imagearchive.open_layer(archive, layer) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_a_code_edit_rebuilds_only_the_app_layer(scratch: Path) -> None:
    context = scratch / "context"
    context.mkdir()
    _copy_context(context)
    cache = REPO / ".rhime" / "image-cache"
    first = image.build(repo=context, cache=cache, output=scratch / "first.tar")
    again = image.build(repo=context, cache=cache, output=scratch / "again.tar")
    assert again.reused == ("base", "venv", "app")
    assert again.image_id == first.image_id  # the same inputs give the same image

    edited = context / "services" / "rhime" / "catalogue.py"
    edited.write_text(edited.read_text() + "\n# an edit\n")
    started = time.monotonic()
    rebuilt = image.build(repo=context, cache=cache, output=scratch / "edited.tar")
    seconds = time.monotonic() - started
    print(f"rebuild after a code edit: {seconds:.1f}s")
    assert rebuilt.reused == ("base", "venv")
    assert rebuilt.layers[:2] == first.layers[:2]
    assert rebuilt.layers[2].diff_id != first.layers[2].diff_id
    source = _member(rebuilt.path, 2, "app/services/rhime/catalogue.py")
    assert source.endswith(b"# an edit\n")
    assert seconds < 120


def test_dev_target_runs_its_own_steps(scratch: Path) -> None:
    dev = image.build(target="dev", output=scratch / "dev.tar")
    manifest, config = imagearchive.read(dev.path)
    assert manifest["RepoTags"] == ["rhime.local/rhime:dev"]
    assert config["config"]["User"] == final("dev", "USER")
    steps = runs("dev")
    assert len(dev.layers) == 3 + bool(steps)  # the dev stage's RUN is a layer, as in Docker
    root = scratch / "root"
    imagearchive.unpack(dev.path, root)
    if any("chown -R 10001:10001 /app/services" in step for step in steps):
        assert (root / "app/services/rhime/cli.py").stat().st_uid == 10001
        assert run(root, config, ["touch", "/app/services/x"]).returncode == 0
    check = "import rhime.cli" + (", moto.server" if "--group standins" in str(steps) else "")
    result = run(root, config, ["python", "-c", check])
    assert result.returncode == 0, result.stdout


def _containerd_tools() -> dict[str, str]:
    found = {}
    for name in ("containerd", "ctr", "runc"):
        path = shutil.which(name) or str(REPO / ".rhime" / "bin" / name)
        if Path(path).is_file():
            found[name] = path
    return found


@pytest.mark.skipif(
    not {"containerd", "ctr"} <= _containerd_tools().keys(), reason="containerd not installed"
)
def test_containerd_imports_it(production: imagearchive.Built, scratch: Path) -> None:
    tools = _containerd_tools()
    socket = scratch / "run" / "containerd.sock"
    config = scratch / "config.toml"
    shims = Path(tempfile.mkdtemp(prefix="ctr-", dir="/tmp"))  # socket paths must be short
    # a containerd of its own: own socket, state and shim sockets; no CRI and no NRI, so it
    # touches nothing of a cluster's containerd on the same machine
    config.write_text(
        f'version = 2\nroot = "{scratch / "root"}"\nstate = "{scratch / "run"}"\n'
        "disabled_plugins = ["
        '"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", '
        '"io.containerd.cri.v1.images", "io.containerd.nri.v1.nri", '
        '"io.containerd.internal.v1.opt"]\n'
        f'[grpc]\n  address = "{socket}"\n'
        f'[ttrpc]\n  address = "{socket}.ttrpc"\n'
        '[debug]\n  address = ""\n'
        f'[plugins."io.containerd.shim.v1.manager"]\n  socket_dir = "{shims}"\n'
    )
    daemon = subprocess.Popen(
        [tools["containerd"], "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ctr = [tools["ctr"], "-a", str(socket), "-n", "k8s.io"]
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        subprocess.run(
            [*ctr, "images", "import", str(production.path)], check=True, capture_output=True
        )
        listed = subprocess.run(
            [*ctr, "images", "ls", "-q"], check=True, capture_output=True, text=True
        )
        assert production.tag in listed.stdout.split()
        if "runc" in tools:
            runc = ["--runc-binary", tools["runc"]]
            name = f"rhime-image-test-{os.getpid()}"
            ran = subprocess.run(
                [*ctr, "run", "--rm", *runc, production.tag, name, "rhime", "components"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, ran.stderr
            assert ran.stdout.split()[0] == catalogue.COMPONENTS[0].name
    finally:
        daemon.terminate()
        daemon.wait(30)
        shutil.rmtree(shims, ignore_errors=True)
