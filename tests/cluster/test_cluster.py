"""A real single-node cluster runs a Deployment behind a Service, reachable from the host and
by DNS name from a pod, lets nothing out, and leaves the host as it found it."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rhime.runtime import cluster, images
from rhime.runtime.controlplane import binary

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

HELLO = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      containers:
        - name: hello
          image: {images.HELLO}
          imagePullPolicy: Never
          ports: [{{containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: hello, namespace: default}}
spec:
  selector: {{app: hello}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

# Three fetches from one pod: the Service by DNS name; a public name, which the cluster's
# DNS must refuse (it forwards nothing); an address beyond the host, which must not leave.
CLIENT = f"""
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: default}}
spec:
  restartPolicy: Never
  containers:
    - {{name: by-name, image: {images.HELLO}, imagePullPolicy: Never,
        args: [get, "http://hello.default.svc.cluster.local/"]}}
    - {{name: public-name, image: {images.HELLO}, imagePullPolicy: Never,
        args: [get, "http://example.com/"]}}
    - {{name: beyond-host, image: {images.HELLO}, imagePullPolicy: Never,
        args: [get, "http://192.0.2.1/"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: puller, namespace: default}}
spec:
  restartPolicy: Never
  containers: [{{name: main, image: registry.example/nothing:1, imagePullPolicy: Always}}]
"""


def until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.1)


def cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def listening(pids: set[int]) -> set[tuple[IPAddress, int]]:
    """Local addresses of listening TCP and bound UDP sockets held by `pids`."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: set[tuple[IPAddress, int]] = set()
    for name, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and fields[9] in inodes:
                address, port = fields[1].split(":")
                # 32-bit words in host (little-endian) order
                raw = b"".join(
                    bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)
                )
                found.add((ipaddress.ip_address(raw), int(port, 16)))
    return found


def test_cluster_runs_pods_and_restores_the_host(
    cluster_dir: Path, snapshot: Callable[[], dict[str, Any]]
) -> None:
    figures: dict[str, float] = {}

    def timed(name: str, action: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = action()
        figures[name] = time.monotonic() - started
        return result

    before = snapshot()
    node = cluster.Cluster(cluster_dir)
    try:
        kubeconfig = timed("up", node.up)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

        def kubectl(*args: str, stdin: str | None = None) -> str:
            result = subprocess.run(
                [binary("kubectl"), *args], input=stdin, capture_output=True, text=True, env=env
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert node.plane is not None
        plane = node.plane
        timed("import image", lambda: node.import_image(node.hello_image()))

        # Nothing of the cluster listens beyond loopback and the bridge.
        pids = {s.process.pid for s in [*plane.servers, *node.servers] if s.process}
        addresses = listening(pids)
        gateway = ipaddress.ip_address(cluster.GATEWAY)
        assert (gateway, 53) in addresses, addresses  # CoreDNS (UDP and TCP)
        for address, port in addresses:
            assert address.is_loopback or address == gateway, (address, port)

        kubectl("apply", "-f", "-", stdin=HELLO)

        def running() -> bool:
            pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"]
            ready = [
                pod
                for pod in pods
                if pod["status"].get("phase") == "Running"
                and all(c.get("ready") for c in pod["status"].get("containerStatuses", []))
            ]
            return len(ready) == 2

        timed("2 pods running", lambda: until(running, timeout=60, what="2 ready pods"))
        ip = json.loads(kubectl("get", "service", "hello", "-o", "json"))["spec"]["clusterIP"]

        answers: set[str] = set()

        def both_pods_answer() -> bool:
            # the first request after a rollout may beat kube-proxy's sync: retried
            try:
                with urllib.request.urlopen(f"http://{ip}/", timeout=2) as response:
                    answers.add(response.read().decode().strip())
            except (urllib.error.URLError, OSError):
                pass
            return len(answers) == 2

        timed("service from host", lambda: until(both_pods_answer, timeout=30, what="2 pods"))
        assert all(re.fullmatch(r"hello from hello-[a-z0-9-]+", a) for a in answers), answers

        kubectl("apply", "-f", "-", stdin=CLIENT)

        def finished() -> dict[str, Any] | None:
            pod = json.loads(kubectl("get", "pod", "client", "-o", "json"))
            states = {
                s["name"]: s["state"].get("terminated")
                for s in pod["status"].get("containerStatuses", [])
            }
            return states if len(states) == 3 and all(states.values()) else None

        states = timed("dns from pod", lambda: until(finished, timeout=60, what="client pod"))
        logs = {name: kubectl("logs", "client", "-c", name) for name in states}
        assert states["by-name"]["exitCode"] == 0, logs
        assert logs["by-name"].startswith("hello from hello-"), logs
        assert states["public-name"]["exitCode"] == 1, logs
        assert "no such host" in logs["public-name"], logs
        assert states["beyond-host"]["exitCode"] == 1, logs
        dropped = subprocess.run(
            ["iptables", "-w", "-L", cluster.CHAIN, "-v", "-x", "-n"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        counts = [int(line.split()[0]) for line in dropped.splitlines() if " DROP " in line]
        assert sum(counts) > 0, dropped

        # A pull goes nowhere: every registry is a closed port on loopback.
        def pull_refused() -> str:
            pod = json.loads(kubectl("get", "pod", "puller", "-o", "json"))
            statuses = pod["status"].get("containerStatuses") or [{}]
            return str((statuses[0].get("state") or {}).get("waiting", {}).get("message", ""))

        message = until(pull_refused, timeout=30, what="the pull's failure")
        assert "127.0.0.1:9" in message, message
        assert "connection refused" in message, message
    finally:
        timed("down", node.down)

    after = snapshot()
    for key, value in before.items():
        assert after[key] == value, key
    assert not cluster.mounts_under(cluster_dir)
    leftovers = [
        pid for pid in os.listdir("/proc") if pid.isdigit() and str(cluster_dir) in cmdline(pid)
    ]
    assert not leftovers, leftovers
    print("\n" + "\n".join(f"  {name:18} {seconds:6.2f}s" for name, seconds in figures.items()))
    print("  " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in node.timings.items()))
