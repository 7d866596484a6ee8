"""Helpers for operator tests: drive the emulated API the way kubectl would."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import operator_emulator

from rhime_operator import names

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "rhimedeployments.rhime.dev.yaml"
NAMESPACE = "ns1"
SECRETS = {
    "rhime-auth": {
        "RHIME_ACCESS_TOKEN_SECRET": "YQ==",
        "RHIME_INTERNAL_SECRET": "Yg==",
        "RHIME_ENCRYPTION_KEY": "Yw==",
    },
    "rhime-spotify": {"RHIME_SPOTIFY_CLIENT_ID": "ZA==", "RHIME_SPOTIFY_CLIENT_SECRET": "ZQ=="},
    "rhime-aws": {"AWS_ACCESS_KEY_ID": "Zg==", "AWS_SECRET_ACCESS_KEY": "Zw=="},
}
RD = f"{names.GROUP}/{names.VERSION}/{names.PLURAL}"


@dataclasses.dataclass
class Cluster:
    """Helpers to drive the emulated API the way kubectl would."""

    kmock: Any

    def path(self, resource: str, name: str | None = None, *, namespace: str = NAMESPACE) -> str:
        group_version, plural = resource.rsplit("/", 1)
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "metadata": {"namespace": NAMESPACE, **body["metadata"]}}
        async with self.kmock.post(self.path(resource), json=body) as resp:
            assert resp.status < 300, await resp.text()
            return dict(await resp.json())

    async def patch(
        self, resource: str, name: str, body: dict[str, Any], *, subresource: str = ""
    ) -> None:
        path = self.path(resource, name) + (f"/{subresource}" if subresource else "")
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.kmock.patch(path, json=body, headers=headers) as resp:
            assert resp.status < 300, await resp.text()

    async def delete(self, resource: str, name: str) -> None:
        async with self.kmock.delete(self.path(resource, name)) as resp:
            assert resp.status < 300, await resp.text()

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self.kmock.objects[resource, NAMESPACE, name]
        except KeyError:
            return None
        return None if obj.deleted else dict(obj.raw)

    def children(self, instance: str) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for (_resource, _, name), obj in list(self.kmock.objects.items()):
            if obj.deleted:
                continue
            raw = dict(obj.raw)
            labels = raw.get("metadata", {}).get("labels", {})
            if labels.get(names.LABEL_INSTANCE) == instance and "kind" in raw:
                found[raw["kind"], name] = raw
        return found

    def events(self) -> list[dict[str, Any]]:
        return [
            dict(obj.raw)
            for (resource, _, _), obj in list(self.kmock.objects.items())
            if resource.plural == "events" and not obj.deleted
        ]

    def applies(self, instance: str) -> list[Any]:
        """Server-side apply requests for this instance's children, in order."""
        return [
            r
            for r in list(self.kmock)
            if r.method == "PATCH"
            and r.headers.get("Content-Type", "").startswith(operator_emulator.APPLY)
            and isinstance(r.data, dict)
            and r.data.get("metadata", {}).get("labels", {}).get(names.LABEL_INSTANCE) == instance
        ]

    async def until(self, predicate: Callable[[], Any], *, timeout: float = 15.0) -> Any:
        async with asyncio.timeout(timeout):
            # Polls the emulator's in-memory state, which has no change notifications.
            while not (result := predicate()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return result

    async def create_secrets(self) -> None:
        for name, data in SECRETS.items():
            await self.create("v1/secrets", {"metadata": {"name": name}, "data": data})
