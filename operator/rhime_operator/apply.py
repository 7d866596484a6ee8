"""A small async Kubernetes client: server-side apply, prune, read Secrets, patch status.

Credentials come from the in-cluster service account or a kubeconfig, loaded through the
`kubernetes` package's loaders; requests go through aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import kubernetes

from rhime_operator import names

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def load_configuration() -> Any:
    """In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def object_path(*, api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def path_of(obj: Mapping[str, Any]) -> str:
    _, plural = names.CHILD_KINDS[obj["kind"]]
    meta = obj["metadata"]
    return object_path(
        api_version=obj["apiVersion"], plural=plural, namespace=meta["namespace"], name=meta["name"]
    )


class KubeClient:
    """Async access to the Kubernetes API with one connection pool."""

    def __init__(self, *, configuration: Any, field_manager: str, concurrency: int = 8) -> None:
        self._configuration = configuration
        self._field_manager = field_manager
        self._semaphore = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self._configuration
        if not cfg.host.startswith("https"):
            return False
        if not cfg.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return context

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl()))
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self._configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        data = None if body is None else json.dumps(body)
        url = self._configuration.host.rstrip("/") + path
        async with (
            self._semaphore,
            self._session.request(method, url, params=params, data=data, headers=headers) as resp,
        ):
            text = await resp.text()
            if resp.status == 404:
                return None
            if resp.status >= 400:
                raise ApiError(resp.status, text[:500])
            return json.loads(text) if text else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def apply(self, obj: Mapping[str, Any]) -> Any:
        """Server-side apply one object (creates it if absent), forcing our field ownership."""
        params = {"fieldManager": self._field_manager, "force": "true"}
        result = await self._request(
            "PATCH", path_of(obj), params=params, body=obj, content_type=APPLY_CONTENT_TYPE
        )
        if result is None:
            raise ApiError(404, f"{obj['kind']} {obj['metadata']['name']}: resource not served")
        return result

    async def apply_all(self, objs: Iterable[Mapping[str, Any]]) -> None:
        """Apply configuration first, then everything else concurrently."""
        objs = list(objs)
        first = [o for o in objs if o["kind"] in ("ServiceAccount", "ConfigMap")]
        rest = [o for o in objs if o["kind"] not in ("ServiceAccount", "ConfigMap")]
        await asyncio.gather(*(self.apply(o) for o in first))
        await asyncio.gather(*(self.apply(o) for o in rest))

    async def prune(
        self, *, namespace: str, instance: str, owner_uid: str, keep: set[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Delete children owned by this instance that are no longer rendered."""
        selector = f"{names.LABEL_INSTANCE}={instance},{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
        doomed: list[tuple[str, str, str]] = []
        for kind, (api_version, plural) in names.CHILD_KINDS.items():
            path = object_path(api_version=api_version, plural=plural, namespace=namespace)
            listing = await self._request("GET", path, params={"labelSelector": selector})
            for item in (listing or {}).get("items", []):
                meta = item.get("metadata", {})
                owners = {o.get("uid") for o in meta.get("ownerReferences", [])}
                if (
                    owner_uid in owners
                    and meta.get("labels", {}).get(names.LABEL_INSTANCE) == instance
                    and (kind, meta.get("name")) not in keep
                ):
                    doomed.append((kind, f"{path}/{meta['name']}", meta["name"]))
        await asyncio.gather(*(self._request("DELETE", p) for _, p, _ in doomed))
        return [(kind, name) for kind, _, name in doomed]

    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        path = object_path(api_version="v1", plural="secrets", namespace=namespace, name=name)
        secret = await self._request("GET", path)
        return None if secret is None else dict(secret.get("data") or {})

    async def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        path = object_path(
            api_version=names.API_VERSION, plural=names.PLURAL, namespace=namespace, name=name
        )
        await self._request(
            "PATCH", f"{path}/status", body={"status": status}, content_type=MERGE_CONTENT_TYPE
        )
