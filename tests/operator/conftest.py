"""The real Kopf operator, in-process, against a real API server.

The control plane (etcd, kube-apiserver, kube-controller-manager) starts once per session;
each test gets its own namespace and its own operator, which authenticates with a bearer
token the API server issued to the chart's ServiceAccount and holds exactly the chart's RBAC.
No kubelet runs: tests report pods ready themselves (`Kube.mark_pods_ready`).
"""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import yaml
from kube import CRD_PATH, Kube, until
from operator_harness import Operator, create_namespace, running_operator

from rhime.runtime import controlplane
from rhime_operator import names


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[controlplane.ControlPlane]:
    if not controlplane.available():
        pytest.fail("the Kubernetes control plane is not built: run scripts/bootstrap.sh --kube")
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.start()
    try:
        crd = yaml.safe_load(CRD_PATH.read_text())
        plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        yield plane
    finally:
        plane.stop()


async def _established(plane: controlplane.ControlPlane) -> bool:
    crd = await asyncio.to_thread(
        plane.request,
        "GET",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{names.PLURAL}.{names.GROUP}",
    )
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


async def _servable(plane: controlplane.ControlPlane) -> bool:
    """Established, and listable: right after that the API server can still answer 429
    ("storage is (re)initializing"), which would make Kopf back off before its first watch."""
    if not await _established(plane):
        return False
    try:
        await asyncio.to_thread(
            plane.request, "GET", f"/apis/{names.GROUP}/{names.VERSION}/{names.PLURAL}"
        )
    except OSError:
        return False
    return True


@pytest.fixture
async def kube(control_plane: controlplane.ControlPlane) -> Kube:
    """A fresh namespace, driven as the cluster admin."""
    await until(lambda: _servable(control_plane))
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    await create_namespace(control_plane, namespace)
    return Kube(control_plane, namespace)


@pytest.fixture
async def operator(
    kube: Kube, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Operator]:
    """The operator watching only the test's namespace (the chart's Role there)."""
    async with running_operator(kube, tmp_path=tmp_path, monkeypatch=monkeypatch) as running:
        yield running
    assert running.forbidden() == []
