"""Components started for a benchmark as deployed: each `rhime serve NAME` in its own process,
over stores the benchmark runs in a temporary directory (with a `logs` folder for the
components' output)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from rhime.runtime import servers


def env(rt: servers.Runtime, *, namespace: str, secret: str) -> dict[str, str]:
    """The settings every component needs: its stores, namespace and internal secret."""
    return {
        "RHIME_NAMESPACE": namespace,
        "RHIME_MONGO_URL": rt.urls["mongo"],
        "RHIME_REDIS_URL": rt.urls["redis"],
        "RHIME_NATS_URL": rt.urls["nats"],
        "RHIME_INTERNAL_SECRET": secret,
        "RHIME_LOG_JSON": "false",
        "RHIME_LOG_LEVEL": "WARNING",
    }


def start(name: str, *, port: int, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "rhime", "serve", name],
        env={**os.environ, **env, "RHIME_PORT": str(port), "RHIME_COMPONENT": name},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def stores(names: Sequence[str]) -> Iterator[tuple[servers.Runtime, Path]]:
    """The stores `names` running in a temporary directory, and its `logs` folder."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        logs = directory / "logs"
        logs.mkdir()
        with servers.running(directory=directory, names=names) as rt:
            yield rt, logs
