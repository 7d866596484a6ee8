"""The managed infrastructure's images run what the operator renders for them: each image is
unpacked and started (chroot, as the operator's uid) with the StatefulSet's args, plus a
loopback address and a free port, and answers its protocol."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo
import pytest

from rhime.runtime import imagearchive, infraimages, servers
from rhime_operator import infrastructure
from rhime_operator import spec as spec_mod
from tests.image.chroot import container_argv, needs_root, start
from tests.image.dockerfacts import REPO

KINDS = {"nats": spec_mod.Infra.NATS, "redis": spec_mod.Infra.REDIS, "mongo": spec_mod.Infra.MONGO}


def rendered(name: str) -> dict[str, Any]:
    """The operator's StatefulSet for `name` with its defaults."""
    kind = KINDS[name]
    infra = spec_mod.InfraSpec(kind=kind, version=spec_mod.DEFAULT_INFRA_VERSION[kind])
    return infrastructure.render_statefulset(infra, instance="demo", namespace="demo")


def _nats_up(port: int, monitor: int) -> bool:
    url = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)
    return False


def _redis_up(port: int, monitor: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
        sock.sendall(b"SET k v\r\nGET k\r\n")
        time.sleep(0.1)
        return sock.recv(64) == b"+OK\r\n$1\r\nv\r\n"
    return False


def _mongo_up(port: int, monitor: int) -> bool:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=1000
    )
    try:
        client.probe.things.insert_one({"a": 1})
        return client.probe.things.find_one({}, {"_id": 0}) == {"a": 1}
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


# After the operator's args: loopback and free ports, so the test touches nothing else.
LOCAL: dict[str, tuple[Callable[[int, int], list[str]], Callable[[int, int], bool]]] = {
    "nats": (
        lambda port, monitor: ["-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)],
        _nats_up,
    ),
    "redis": (lambda port, _: ["--bind", "127.0.0.1", "--port", str(port)], _redis_up),
    "mongo": (lambda port, _: ["--bind_ip", "127.0.0.1", "--port", str(port)], _mongo_up),
}


@pytest.mark.parametrize("name", list(infraimages.INFRA))
def test_tags_users_and_ports_are_the_operators(name: str) -> None:
    statefulset = rendered(name)
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    infra = infraimages.INFRA[name]
    repository, _, version = infra.tag.rpartition(":")
    image_name, _, image_version = container["image"].rpartition(":")
    assert repository.rsplit("/", 1)[-1] == image_name.rsplit("/", 1)[-1]
    assert version == image_version
    assert infra.uid == pod["securityContext"]["runAsUser"]
    ports = {f"{p['containerPort']}/tcp" for p in container["ports"]}
    assert ports <= set(infra.ports)
    data = {m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data"}
    assert data == {infra.data}
    assert "command" not in container  # the image's entrypoint (or args[0]) runs


@pytest.mark.slow
@pytest.mark.timeout(300)
@needs_root
@pytest.mark.parametrize("name", list(infraimages.INFRA))
def test_image_runs_the_operators_args(name: str, scratch: Path) -> None:
    built = infraimages.build(name, output=scratch / f"{name}.tar")
    manifest, config = imagearchive.read(built.path)
    infra = infraimages.INFRA[name]
    assert manifest["RepoTags"] == [infra.tag]
    assert config["config"]["User"] == f"{infra.uid}:{infra.uid}"
    print(f"{infra.tag}: {built.path.stat().st_size / 1e6:.1f} MB")

    root = scratch / "root"
    imagearchive.unpack(built.path, root)
    assert (root / infra.data.lstrip("/")).stat().st_uid == infra.uid
    args = rendered(name)["spec"]["template"]["spec"]["containers"][0]["args"]
    port, monitor = servers.free_port(), servers.free_port()
    local, ready = LOCAL[name]
    log = scratch / f"{name}.log"
    with open(log, "wb") as out:
        process = start(
            root, config, container_argv(config, [*args, *local(port, monitor)]), stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready(port, monitor):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert any((root / infra.data.lstrip("/")).iterdir())  # it keeps its data there
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.skipif(not shutil.which("go"), reason="Go is not installed")
def test_mongod_flag_mapping() -> None:
    subprocess.run(
        ["go", "test", "./..."],
        cwd=REPO / "tools" / "mongod",
        check=True,
        capture_output=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
