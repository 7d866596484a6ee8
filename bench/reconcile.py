"""Operator speed and footprint against a real Kubernetes API server, one run.

    PYTHONPATH=. .venv/bin/python bench/reconcile.py [--runs 3] [--quick]

Starts etcd, kube-apiserver and kube-controller-manager (rhime.runtime.controlplane; no
kubelet, so no pod runs) in a temporary directory, installs the CRD and the chart's
ServiceAccount and ClusterRole, and runs the operator as the chart's Deployment runs it (the
container's command and environment, rendered from the chart with its default values) with a
bearer token of that ServiceAccount. Then:

1. create a RhimeDeployment -> all of its children applied;
2. a child Deployment, then a child Service, deleted -> recreated;
3. a RhimeDeployment deleted -> all of its children gone (the real garbage collector, whose
   pace is mostly kube-controller-manager's client rate limit, 20 requests/s by default);
4. 10 RhimeDeployments in 10 namespaces at once -> all of their children applied;
5. the operator process's resident memory (RSS) after those.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import helm_python
import yaml

from rhime.runtime import controlplane, servers
from rhime_operator import names, render, spec, stores

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "rhime-operator"
CRD = ROOT / "crds" / "rhimedeployments.rhime.dev.yaml"
RELEASE = "rhime-operator"
SYSTEM = "rhime-operator-system"
NAMESPACE = "bench"
PLATFORMS = 10
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
SECRETS = {
    "rhime-auth": ("RHIME_ACCESS_TOKEN_SECRET", "RHIME_INTERNAL_SECRET", "RHIME_ENCRYPTION_KEY"),
    "rhime-spotify": ("RHIME_SPOTIFY_CLIENT_ID", "RHIME_SPOTIFY_CLIENT_SECRET"),
    "rhime-aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
}
# Only names and labels are needed: metadata-only lists keep the polling cheap for the server.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

Plane = controlplane.ControlPlane


# --- API access -------------------------------------------------------------------------------


def call(plane: Plane, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """One request as the cluster admin; an error carries the API server's explanation."""
    try:
        return plane.request(method, path, body, **headers)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {detail}") from None


def api_path(api_version: str, plural: str, *, namespace: str | None = None, name: str = "") -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    return f"{path}/{name}" if name else path


def create(plane: Plane, doc: dict[str, Any]) -> dict[str, Any]:
    # Every kind created here pluralises regularly.
    plural = doc["kind"].lower() + "s"
    namespace = doc["metadata"].get("namespace")
    return dict(call(plane, "POST", api_path(doc["apiVersion"], plural, namespace=namespace), doc))


def get(plane: Plane, path: str) -> dict[str, Any] | None:
    try:
        return dict(plane.request("GET", path))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def rd_path(namespace: str, name: str = "") -> str:
    return api_path(names.API_VERSION, names.PLURAL, namespace=namespace, name=name)


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02
) -> float:
    """Poll `check`; seconds from the call until it held (an upper bound by one poll)."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)
    return time.perf_counter() - started


# --- the cluster ------------------------------------------------------------------------------


def install_crd(plane: Plane) -> None:
    create(plane, yaml.safe_load(CRD.read_text()))
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{names.PLURAL}.{names.GROUP}"

    def established() -> bool:
        conditions = (call(plane, "GET", path).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    def listable() -> bool:
        # Until the API server's cache of the new resource is filled, lists answer 429 and
        # Kopf backs off for seconds: that start-up cost is not the operator's.
        try:
            plane.request("GET", api_path(names.API_VERSION, names.PLURAL))
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                return False
            raise
        return True

    wait_until(established, timeout=30, what="the CRD established")
    wait_until(listable, timeout=30, what="RhimeDeployments listable")


def create_namespace(plane: Plane, namespace: str, *, secrets: bool = True) -> None:
    create(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if not secrets:
        return
    for name, keys in SECRETS.items():
        data = {key: base64.b64encode(f"bench-{key}".encode()).decode() for key in keys}
        create(
            plane,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": data,
            },
        )


def render_chart() -> list[dict[str, Any]]:
    """The chart watching every namespace (10 platforms in 10 namespaces), with a ClusterRole."""
    chart = helm_python.Chart.load(CHART)
    values = {"watchNamespaces": []}
    rendered = chart.render(values, name=RELEASE, namespace=SYSTEM, is_install=True)
    return [
        doc
        for path, text in rendered.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def install_rbac(plane: Plane, docs: list[dict[str, Any]]) -> str:
    """The chart's ServiceAccount and RBAC; returns the ServiceAccount's name."""
    account = ""
    for doc in docs:
        if doc["kind"] not in RBAC_KINDS:
            continue
        if doc["kind"] == "ServiceAccount":
            doc["metadata"].setdefault("namespace", SYSTEM)
            account = doc["metadata"]["name"]
        create(plane, doc)
    if not account:
        raise RuntimeError("the chart rendered no ServiceAccount")
    return account


def rhime_deployment(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }


def rendered_children(namespace: str, name: str) -> list[dict[str, Any]]:
    """What the operator should apply for a default RhimeDeployment (to count and pick from):
    the kinds `children` lists (the stores Secret, made once, is not one of them)."""
    parsed = spec.parse({}, name=name)
    seed = {stores.secret_name(instance=name): {stores.SEED_KEY: stores.new_seed()}}
    rendered = render.render_platform(parsed, instance=name, namespace=namespace, secrets=seed)
    return [o for o in rendered if o["kind"] in names.CHILD_KINDS]


def children(plane: Plane, *, namespace: str | None, live: bool) -> collections.Counter[Any]:
    """Objects the operator manages, counted by (namespace, instance), every kind listed at
    once; `live` leaves out those already being deleted."""
    selector = f"?labelSelector={names.LABEL_MANAGED_BY}={names.MANAGED_BY}"

    def listing(coordinates: tuple[str, str]) -> list[dict[str, Any]]:
        path = api_path(*coordinates, namespace=namespace) + selector
        return list(call(plane, "GET", path, Accept=METADATA_ONLY).get("items") or [])

    counts: collections.Counter[Any] = collections.Counter()
    with ThreadPoolExecutor(max_workers=len(names.CHILD_KINDS)) as pool:
        for items in pool.map(listing, names.CHILD_KINDS.values()):
            for item in items:
                meta = item["metadata"]
                if live and meta.get("deletionTimestamp"):
                    continue
                counts[meta.get("namespace"), meta["labels"].get(names.LABEL_INSTANCE)] += 1
    return counts


# --- the operator -----------------------------------------------------------------------------


def operator_command(docs: list[dict[str, Any]], port: int) -> tuple[list[str], dict[str, str]]:
    """The chart's container command and environment, runnable here."""
    (deployment,) = (d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    kopf = str(Path(sys.executable).parent / "kopf")
    command = [kopf] + [
        f"--liveness=http://127.0.0.1:{port}/healthz" if arg.startswith("--liveness=") else arg
        for arg in container["command"][1:]
    ]
    env = {item["name"]: str(item["value"]) for item in container.get("env", [])}
    return command, env


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def operator_process(plane: Plane, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    docs = render_chart()
    account = install_rbac(plane, docs)
    token = plane.service_account_token(namespace=SYSTEM, name=account)
    config = plane.write_kubeconfig(workdir / "operator.kubeconfig", user="operator", token=token)
    port = servers.free_port()
    command, chart_env = operator_command(docs, port)
    env = {**os.environ, **chart_env, "KUBECONFIG": str(config)}
    env.pop("KUBERNETES_SERVICE_HOST", None)  # not in a pod: use the kubeconfig
    log_path = workdir / "operator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the operator exited with {process.returncode}")
            return healthy(f"http://127.0.0.1:{port}/healthz")

        wait_until(ready, timeout=60, what="the operator's liveness endpoint")
        yield process
    except BaseException:
        tail = log_path.read_text(errors="replace").splitlines()[-30:]
        print("operator log (last lines):", *tail, sep="\n  ", file=sys.stderr)
        raise
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- measurements -----------------------------------------------------------------------------


def bench_create(plane: Plane, name: str) -> tuple[float, int]:
    """Seconds from creating a RhimeDeployment to all of its children applied, and how many."""
    expected = len(rendered_children(NAMESPACE, name))
    started = time.perf_counter()
    create(plane, rhime_deployment(NAMESPACE, name))
    wait_until(
        lambda: children(plane, namespace=NAMESPACE, live=True)[NAMESPACE, name] >= expected,
        timeout=60,
        what=f"{name}: {expected} children applied",
    )
    return time.perf_counter() - started, expected


def bench_recreate(plane: Plane, name: str, kind: str) -> float:
    """Seconds from deleting one child of `kind` to a new one in its place."""
    child = next(o for o in rendered_children(NAMESPACE, name) if o["kind"] == kind)
    path = api_path(*names.CHILD_KINDS[kind], namespace=NAMESPACE, name=child["metadata"]["name"])
    old_uid = call(plane, "GET", path)["metadata"]["uid"]

    def recreated() -> bool:
        obj = get(plane, path)
        return bool(obj and obj["metadata"]["uid"] != old_uid)

    started = time.perf_counter()
    call(plane, "DELETE", path)
    wait_until(recreated, timeout=60, what=f"{kind} {child['metadata']['name']} recreated")
    return time.perf_counter() - started


def bench_delete(plane: Plane, name: str) -> tuple[float, float]:
    """Seconds from deleting a RhimeDeployment to it gone (the operator's finalizer released),
    and to all of its children gone (garbage-collected through their owner references)."""
    started = time.perf_counter()
    call(plane, "DELETE", rd_path(NAMESPACE, name))
    released = wait_until(
        lambda: get(plane, rd_path(NAMESPACE, name)) is None,
        timeout=60,
        what=f"{name} released by the operator",
    )
    wait_until(
        lambda: children(plane, namespace=NAMESPACE, live=False)[NAMESPACE, name] == 0,
        timeout=120,
        what=f"{name}: children garbage-collected",
    )
    return released, time.perf_counter() - started


def bench_many(plane: Plane, count: int) -> tuple[float, int]:
    """Seconds from creating `count` RhimeDeployments (one per namespace, all at once) to all
    of their children applied, and how many children that is."""
    spaces = [f"{NAMESPACE}-{i}" for i in range(count)]
    for namespace in spaces:
        create_namespace(plane, namespace)
    expected = {(ns, "rhime"): len(rendered_children(ns, "rhime")) for ns in spaces}

    def applied() -> bool:
        found = children(plane, namespace=None, live=True)
        return all(found[key] >= n for key, n in expected.items())

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda ns: create(plane, rhime_deployment(ns, "rhime")), spaces))
    # Listing every platform's children is work for the API server the operator waits on:
    # poll it less often than a single platform's.
    wait_until(applied, timeout=180, what=f"{count} platforms applied", interval=0.25)
    return time.perf_counter() - started, sum(expected.values())


# --- report -----------------------------------------------------------------------------------


def verdict(seconds: float, target: float) -> str:
    return f"(target < {target:g} s)" + ("" if seconds < target else "  OVER TARGET")


def summary(timings: list[float]) -> str:
    text = f"median {statistics.median(timings) * 1000:.0f} ms"
    if len(timings) > 1:
        text += f", first {timings[0] * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
    return f"{text}, runs {len(timings)}"


def run(plane: Plane, workdir: Path, runs: int) -> None:
    install_crd(plane)
    create_namespace(plane, SYSTEM, secrets=False)
    create_namespace(plane, NAMESPACE)
    with operator_process(plane, workdir) as process:
        rds = [f"rd{i}" for i in range(runs)]
        created = [bench_create(plane, rd) for rd in rds]
        timings = [seconds for seconds, _ in created]
        print(
            f"create RhimeDeployment -> all {created[0][1]} children applied: "
            f"{summary(timings)} {verdict(statistics.median(timings), 3)}"
        )
        for kind in ("Deployment", "Service"):
            timings = [bench_recreate(plane, rds[0], kind) for _ in range(runs)]
            print(
                f"child {kind} deleted -> recreated: "
                f"{summary(timings)} {verdict(statistics.median(timings), 5)}"
            )
        deleted = [bench_delete(plane, rd) for rd in rds]
        print(
            "RhimeDeployment deleted -> released by the operator: "
            f"{summary([released for released, _ in deleted])}"
        )
        print(
            "RhimeDeployment deleted -> all children garbage-collected: "
            f"{summary([gone for _, gone in deleted])}"
        )
        seconds, total = bench_many(plane, PLATFORMS)
        print(
            f"{PLATFORMS} RhimeDeployments in {PLATFORMS} namespaces at once -> all {total} "
            f"children applied: {seconds * 1000:.0f} ms {verdict(seconds, 30)}"
        )
        time.sleep(0.5)  # let the status writes that follow the applies finish
        rss = rss_kib(process.pid)
        print(f"operator RSS after {PLATFORMS} platforms: {rss / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of items 1-3")
    parser.add_argument("--quick", action="store_true", help="one repetition of each")
    args = parser.parse_args()
    if not controlplane.available():
        sys.exit(
            f"the Kubernetes binaries ({', '.join(controlplane.COMMANDS)}) are missing from "
            ".rhime/bin: run scripts/bootstrap.sh --kube"
        )
    with tempfile.TemporaryDirectory(prefix="rhime-bench-") as tmp:
        plane = controlplane.ControlPlane(Path(tmp) / "control-plane")
        plane.start()
        try:
            run(plane, Path(tmp), 1 if args.quick else max(1, args.runs))
        finally:
            plane.stop()


if __name__ == "__main__":
    main()
