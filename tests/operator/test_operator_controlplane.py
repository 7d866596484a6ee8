"""`rhime control-plane up`: what a person runs to try the operator without Docker."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

from rhime.runtime import controlplane


def _running_under(directory: pathlib.Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(directory)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def test_control_plane_up_serves_the_crd_and_stops_cleanly(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "cp"
    process = subprocess.Popen(
        [sys.executable, "-m", "rhime", "control-plane", "up", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        kubeconfig = ""
        deadline = time.monotonic() + 60
        while not kubeconfig and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "control-plane up exited early"
            if line.startswith("export KUBECONFIG="):
                kubeconfig = line.strip().partition("=")[2]
        assert kubeconfig == str(data / "admin.kubeconfig")
        crds = subprocess.run(
            [controlplane.binary("kubectl"), "get", "crd", "-o", "name"],
            env={**os.environ, "KUBECONFIG": kubeconfig},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert "customresourcedefinition.apiextensions.k8s.io/rhimedeployments.rhime.dev" in (
            crds.stdout
        )
        assert _running_under(data)
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert status == 0
    assert _running_under(data) == []
