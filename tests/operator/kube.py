"""Drive a real API server the way a person with kubectl would, as the cluster admin."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import pathlib
import subprocess
import urllib.error
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rhime.runtime import controlplane
from rhime_operator import names

T = TypeVar("T")
ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "rhimedeployments.rhime.dev.yaml"
RD = f"{names.GROUP}/{names.VERSION}/{names.PLURAL}"
DEPLOYMENTS = "apps/v1/deployments"
STATEFULSETS = "apps/v1/statefulsets"
SECRETS_DATA = {
    "rhime-auth": {
        "RHIME_ACCESS_TOKEN_SECRET": "YQ==",
        "RHIME_INTERNAL_SECRET": "Yg==",
        "RHIME_ENCRYPTION_KEY": "Yw==",
    },
    "rhime-spotify": {"RHIME_SPOTIFY_CLIENT_ID": "ZA==", "RHIME_SPOTIFY_CLIENT_SECRET": "ZQ=="},
    "rhime-aws": {"AWS_ACCESS_KEY_ID": "Zg==", "AWS_SECRET_ACCESS_KEY": "Zw=="},
}


class KubeError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def rd(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": name},
        "spec": spec or {},
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in (obj or {}).get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            return dict(cond)
    return {}


@dataclasses.dataclass
class Kube:
    """The admin's view of one namespace of the control plane."""

    plane: controlplane.ControlPlane
    namespace: str

    def path(self, resource: str, name: str | None = None, *, namespace: str | None = None) -> str:
        group_version, plural = resource.rsplit("/", 1)
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        path = f"{prefix}/namespaces/{namespace or self.namespace}/{plural}"
        return f"{path}/{name}" if name else path

    async def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        def call() -> Any:
            try:
                return self.plane.request(method, path, body, **headers)
            except urllib.error.HTTPError as exc:
                raise KubeError(exc.code, exc.read().decode(errors="replace")) from None

        return await asyncio.to_thread(call)

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.request("POST", self.path(resource), body))

    async def patch(
        self, resource: str, name: str, body: dict[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        path = self.path(resource, name) + (f"/{subresource}" if subresource else "")
        return dict(
            await self.request(
                "PATCH", path, body, **{"Content-Type": "application/merge-patch+json"}
            )
        )

    async def delete(self, resource: str, name: str, **params: str) -> None:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        await self.request("DELETE", self.path(resource, name) + (f"?{query}" if query else ""))

    async def get(self, resource: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(await self.request("GET", self.path(resource, name)))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, resource: str, *, selector: str = "") -> list[dict[str, Any]]:
        query = f"?labelSelector={selector}" if selector else ""
        listing = await self.request("GET", self.path(resource) + query)
        return list(listing.get("items", []))

    async def children(self, instance: str) -> dict[tuple[str, str], dict[str, Any]]:
        """Every object of `instance` the operator manages, by (kind, name)."""
        selector = f"{names.LABEL_INSTANCE}={instance}"
        found: dict[tuple[str, str], dict[str, Any]] = {}
        listings = await asyncio.gather(
            *(
                self.list(f"{api_version}/{plural}", selector=selector)
                for api_version, plural in names.CHILD_KINDS.values()
            )
        )
        for kind, items in zip(names.CHILD_KINDS, listings, strict=True):
            for item in items:
                if not item["metadata"].get("deletionTimestamp"):
                    found[kind, item["metadata"]["name"]] = item
        return found

    async def events(self, involved: str) -> list[dict[str, Any]]:
        return [
            e
            for e in await self.list("v1/events")
            if e.get("involvedObject", {}).get("name") == involved
        ]

    async def create_secrets(self, data: dict[str, dict[str, str]] | None = None) -> None:
        for name, values in (data or SECRETS_DATA).items():
            await self.create("v1/secrets", {"metadata": {"name": name}, "data": values})

    async def mark_pods_ready(self, instance: str) -> int:
        """Report the instance's pods Running and Ready, as a kubelet would (none runs here).

        The real Deployment, ReplicaSet and StatefulSet controllers then count them."""
        now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        marked = 0
        for pod in await self.list("v1/pods", selector=f"{names.LABEL_INSTANCE}={instance}"):
            conditions = {
                c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])
            }
            if conditions.get("Ready") == "True" or pod["metadata"].get("deletionTimestamp"):
                continue
            status = {
                "phase": "Running",
                "startTime": now,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
            }
            try:
                await self.patch(
                    "v1/pods", pod["metadata"]["name"], {"status": status}, subresource="status"
                )
                marked += 1
            except KubeError as exc:
                if exc.status not in (404, 409):
                    raise
        return marked

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                controlplane.binary("kubectl"),
                f"--kubeconfig={self.plane.admin_kubeconfig}",
                f"--namespace={self.namespace}",
                *args,
            ],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


async def until(check: Callable[[], Awaitable[T]], *, timeout: float = 60.0) -> T:
    """Poll `check` until it returns something truthy; returns that.

    The timeout is a safety net for a busy machine, not a measure of speed (bench/ is)."""
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)
