"""Operator speed and footprint against kmock, one run.

    .venv/bin/python bench/reconcile.py [--runs 5] [--quick]

1. Render time of the full platform (parse a spec, render every object), in-process.
2. Time from creating a RhimeDeployment to all of its children applied, with the real
   operator started as production starts it (`kopf run ... -m rhime_operator.handlers`, a
   subprocess) against kmock extended with API-server semantics (tests/operator).
3. The operator process's resident memory (RSS) after those reconciliations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import yaml

from rhime import catalogue
from rhime_operator import names, render, spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "operator"))

import operator_emulator  # noqa: E402

NAMESPACE = "bench"
SECRET_NAMES = ("rhime-auth", "rhime-spotify", "rhime-aws")


def bench_render(runs: int) -> tuple[float, int]:
    raw = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())["spec"]
    secrets = {
        name: {"K": "dg=="}
        for name in (
            *SECRET_NAMES,
            "rhime-prod-auth",
            "rhime-prod-spotify",
            "rhime-prod-aws",
            "rhime-mongo-atlas",
        )
    }
    timings = []
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        parsed = spec.parse(raw, name="rhime")
        objs = render.render_platform(
            parsed, instance="rhime", namespace=NAMESPACE, secrets=secrets
        )
        timings.append(time.perf_counter() - started)
        count = len(objs)
    return statistics.median(timings), count


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def expected_children(instance: str) -> int:
    parsed = spec.parse({}, name=instance)
    return len(render.render_platform(parsed, instance=instance, namespace=NAMESPACE, secrets={}))


def children(server: Any, instance: str) -> int:
    found = 0
    for _, obj in list(server.objects.items()):
        if obj.deleted:
            continue
        labels = obj.raw.get("metadata", {}).get("labels", {})
        if labels.get(names.LABEL_INSTANCE) == instance and labels.get(names.LABEL_MANAGED_BY):
            found += 1
    return found


@contextlib.asynccontextmanager
async def operator_process(url: str, workdir: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                "users": [{"name": "kmock", "user": {"token": "bench"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RHIME_OPERATOR_RESYNC_SECONDS": "600"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    kopf = Path(sys.executable).parent / "kopf"
    with (workdir / "operator.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 -- started once, before measuring
            [str(kopf), "run", "--standalone", "--all-namespaces", "-m", "rhime_operator.handlers"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_for(predicate: Any, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the operator did not get there in time")
        await asyncio.sleep(0.01)


async def bench_operator(runs: int) -> tuple[list[float], int, int]:
    server = operator_emulator.ApiServerEmulator()
    async with server, kmock.Server(server):
        server.resources.load_bundled()
        server.resources[f"{names.GROUP}/{names.VERSION}/{names.PLURAL}"] = kmock.ResourceInfo(
            kind=names.KIND,
            namespaced=True,
            verbs={"list", "watch", "get", "patch"},
            subresources={"status"},
        )
        base = f"/api/v1/namespaces/{NAMESPACE}"
        for name in SECRET_NAMES:
            async with server.post(
                f"{base}/secrets",
                json={
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "data": {"K": "dg=="},
                },
            ) as resp:
                resp.raise_for_status()
        with tempfile.TemporaryDirectory() as tmp:
            async with operator_process(str(server.url).rstrip("/"), Path(tmp)) as process:
                await wait_for(
                    lambda: any(
                        r.params.get("watch") == "true" and names.PLURAL in str(r.url)
                        for r in list(server)
                    ),
                    timeout=60,
                )
                timings = []
                expected = 0
                for run in range(runs):
                    # kmock matches every request against its whole request log (quadratic in
                    # requests served); forget the log so that each run measures the operator.
                    server._requests.clear()
                    instance = f"rd{run}"
                    expected = expected_children(instance)
                    body = {
                        "apiVersion": names.API_VERSION,
                        "kind": names.KIND,
                        "metadata": {"name": instance, "namespace": NAMESPACE},
                        "spec": {},
                    }
                    started = time.perf_counter()
                    path = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}"
                    async with server.post(path, json=body) as resp:
                        resp.raise_for_status()
                    await wait_for(
                        lambda i=instance, n=expected: children(server, i) >= n, timeout=120
                    )
                    timings.append(time.perf_counter() - started)
                await asyncio.sleep(0.5)
                rss = rss_kib(process.pid)
    return timings, expected, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="RhimeDeployments to create")
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs

    render_s, objects = bench_render(20 if args.quick else 200)
    print(
        f"render: full platform ({objects} objects, {len(catalogue.COMPONENTS)} components) "
        f"median {render_s * 1000:.2f} ms"
    )
    timings, children_count, rss = asyncio.run(bench_operator(runs))
    print(
        f"apply: create RhimeDeployment -> all {children_count} children applied (kmock): "
        f"median {statistics.median(timings) * 1000:.0f} ms, "
        f"first {timings[0] * 1000:.0f} ms, runs {len(timings)}"
    )
    print(f"operator RSS after {runs} RhimeDeployments: {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
