"""The real Kopf operator, in-process, against kmock extended to an API-server emulator."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import warnings
from collections.abc import AsyncIterator
from typing import Any

import kopf
import kubernetes.config.kube_config
import operator_cluster
import operator_emulator
import pytest
import yaml

from rhime_operator import handlers, names, settings


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    """kmock's server class for these tests: the emulator with API-server behaviour."""
    return {"cls": operator_emulator.ApiServerEmulator}


@pytest.fixture
def crd() -> dict[str, Any]:
    return dict(yaml.safe_load(operator_cluster.CRD_PATH.read_text()))


@pytest.fixture
async def cluster(
    kmock: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, crd: dict[str, Any]
) -> AsyncIterator[operator_cluster.Cluster]:
    """A running operator (resync every 2 s) against an emulated API server."""
    with warnings.catch_warnings():
        # kmock 0.8 reads its bundled resources with a deprecated importlib.resources call.
        warnings.filterwarnings("ignore", "read_binary is deprecated", DeprecationWarning)
        kmock.resources.load_bundled()
    version = crd["spec"]["versions"][0]
    kmock.resources[operator_cluster.RD] = kmock.ResourceInfo(
        kind=names.KIND,
        namespaced=True,
        singular="rhimedeployment",
        shortnames=set(crd["spec"]["names"]["shortNames"]),
        verbs={"list", "watch", "get", "create", "patch", "update", "delete"},
        subresources=set(version["subresources"]),
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
                "users": [{"name": "kmock", "user": {"token": "test"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    assert handlers.RD  # the handlers module registers the operator's handlers on import
    ready = asyncio.Event()
    memo = kopf.Memo(settings=settings.OperatorSettings(resync_seconds=2.0))
    task = asyncio.create_task(
        kopf.operator(
            clusterwide=True,
            standalone=True,
            ready_flag=ready,
            memo=memo,
        )
    )
    helper = operator_cluster.Cluster(kmock=kmock)
    async with asyncio.timeout(10):
        await ready.wait()
        # Create objects only once the operator watches them (kmock replays no history).
        await helper.until(
            lambda: any(
                r.params.get("watch") == "true" and names.PLURAL in str(r.url) for r in list(kmock)
            )
        )
    try:
        yield helper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
