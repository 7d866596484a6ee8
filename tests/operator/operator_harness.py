"""Run the operator in-process as the chart's ServiceAccount, with exactly the chart's RBAC."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import helm_python
import kopf
import kubernetes.config.kube_config
import pytest
import yaml
from kube import ROOT, Kube, KubeError, until

from rhime.runtime import controlplane
from rhime_operator import handlers, names, settings

CHART = ROOT / "charts" / "rhime-operator"


def render_chart(*, release: str, namespace: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(CHART)
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    return [
        doc
        for path, text in rendered.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


async def create_namespace(plane: controlplane.ControlPlane, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    await asyncio.to_thread(plane.request, "POST", "/api/v1/namespaces", body)


@dataclasses.dataclass
class Operator:
    """One running operator and the log records it produced."""

    records: list[logging.LogRecord]

    def forbidden(self) -> list[str]:
        """Requests the API server refused for lack of RBAC."""
        return [
            r.getMessage()
            for r in self.records
            if "cannot" in r.getMessage() and "system:serviceaccount" in r.getMessage()
        ]


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def running_operator(
    kube: Kube,
    *,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    clusterwide: bool = False,
    operator_settings: settings.OperatorSettings | None = None,
) -> AsyncIterator[Operator]:
    """The chart's ServiceAccount and RBAC applied; Kopf running in-process as that account."""
    plane = kube.plane
    release = f"op-{uuid.uuid4().hex[:6]}"
    system = f"{release}-system"
    await create_namespace(plane, system)
    values = {"watchNamespaces": [] if clusterwide else [kube.namespace]}
    docs = render_chart(release=release, namespace=system, values=values)
    account = ""
    for doc in docs:
        if doc["kind"] not in (
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
        ):
            continue  # the operator's own Deployment would need a kubelet; it runs here instead
        group_version = doc["apiVersion"]
        plural = doc["kind"].lower() + "s"
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        namespace = doc["metadata"].get("namespace") or (
            system if doc["kind"] == "ServiceAccount" else None
        )
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        await kube.request("POST", path, doc)
        if doc["kind"] == "ServiceAccount":
            account = doc["metadata"]["name"]
    token = await asyncio.to_thread(plane.service_account_token, namespace=system, name=account)
    config = plane.write_kubeconfig(tmp_path / "operator.kubeconfig", user="operator", token=token)
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    records: list[logging.LogRecord] = []
    collect = _Collect(records)
    logging.getLogger().addHandler(collect)
    assert handlers.RD  # importing the handlers module registers the operator's handlers
    base = operator_settings or settings.OperatorSettings(
        resync_seconds=600.0, secret_poll_seconds=1.0
    )
    memo = kopf.Memo(
        settings=dataclasses.replace(
            base, watch_namespaces=() if clusterwide else (kube.namespace,)
        )
    )
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            clusterwide=clusterwide,
            namespaces=() if clusterwide else [kube.namespace],
            standalone=True,
            ready_flag=ready,
            memo=memo,
        )
    )
    try:
        async with asyncio.timeout(20):
            await ready.wait()
        yield Operator(records)
        # Let the operator release what it holds, so the namespace can go.
        for item in await kube.list(f"{names.API_VERSION}/{names.PLURAL}"):
            with contextlib.suppress(KubeError):
                await kube.delete(f"{names.API_VERSION}/{names.PLURAL}", item["metadata"]["name"])
        with contextlib.suppress(TimeoutError):
            await until(lambda: _none_left(kube), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logging.getLogger().removeHandler(collect)


async def _none_left(kube: Kube) -> bool:
    return not await kube.list(f"{names.API_VERSION}/{names.PLURAL}")
