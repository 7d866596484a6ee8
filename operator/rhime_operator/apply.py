"""The operator's Kubernetes access: server-side apply, prune, read Secrets, patch status.

Built on the `kubernetes` package's dynamic client (discovery, authentication with a
bearer token, a client certificate or the in-cluster ServiceAccount, token refresh). Its
calls block, so they run on a small thread pool of their own; `concurrency` bounds both the
threads and the connection pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import kubernetes
import urllib3
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from rhime_operator import names

T = TypeVar("T")
MERGE_CONTENT_TYPE = "application/merge-patch+json"


class ApiError(RuntimeError):
    """A refused or failed request, with the API server's own message."""

    def __init__(self, status: int, message: str, *, reason: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message


def _api_error(exc: Exception) -> ApiError:
    if isinstance(exc, kubernetes.client.exceptions.ApiException):
        status = int(exc.status or 0)
        try:
            body = json.loads(exc.body or "{}")
        except ValueError:
            body = {}
        message = body.get("message") or str(exc.reason or exc)
        return ApiError(status, message, reason=str(body.get("reason") or exc.reason or ""))
    return ApiError(0, f"Kubernetes API unreachable: {exc}", reason="Unreachable")


def load_configuration() -> Any:
    """In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


@dataclasses.dataclass(frozen=True)
class Applied:
    """What applying a set of objects did besides patching them, for Events."""

    recreated: list[str] = dataclasses.field(default_factory=list)
    expanded: list[str] = dataclasses.field(default_factory=list)
    not_expanded: list[str] = dataclasses.field(default_factory=list)


def _immutable(exc: ApiError) -> bool:
    return exc.status == 422 and (
        "immutable" in exc.message or "Forbidden: updates to statefulset spec" in exc.message
    )


def _quantity(value: str) -> float:
    from kubernetes.utils import quantity

    return float(quantity.parse_quantity(value))  # type: ignore[no-untyped-call]


class KubeClient:
    """Async face of the dynamic client, with a bounded thread pool."""

    def __init__(self, *, configuration: Any, field_manager: str, concurrency: int = 8) -> None:
        configuration = copy.copy(configuration)
        configuration.connection_pool_maxsize = concurrency
        self._api = kubernetes.client.ApiClient(configuration)
        self._field_manager = field_manager
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="kube-api"
        )
        self._dynamic: DynamicClient | None = None

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            try:
                return fn(*args, **kwargs)
            except (kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError) as e:
                raise _api_error(e) from e

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    def _resource(self, api_version: str, kind: str) -> Any:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self._api)  # type: ignore[no-untyped-call]
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    async def _do(self, api_version: str, kind: str, verb: str, **kwargs: Any) -> Any:
        """`verb` ("get", "status.patch", ...) on a kind, in the pool; results as dicts."""

        def run() -> Any:
            target = self._resource(api_version, kind)
            *subresources, method = verb.split(".")
            for sub in subresources:
                target = getattr(target, sub)
            result = getattr(target, method)(**kwargs)
            return result.to_dict() if hasattr(result, "to_dict") else result

        return await self._call(run)

    async def _get(self, api_version: str, kind: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return dict(await self._do(api_version, kind, "get", **kwargs))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply one object (creating it if absent), taking our fields over."""

        result = await self._do(
            obj["apiVersion"],
            obj["kind"],
            "server_side_apply",
            body=dict(obj),
            namespace=obj["metadata"].get("namespace"),
            field_manager=self._field_manager,
            force_conflicts=True,
        )
        return dict(result)

    async def apply_all(self, objs: Iterable[Mapping[str, Any]]) -> Applied:
        """Apply configuration first, then everything else concurrently.

        A StatefulSet whose immutable fields changed (its volume claims, say) is recreated:
        deleted with its pods orphaned, then applied again; the new StatefulSet adopts the
        running pods and rolls them, and volumes that exist are expanded where the storage
        class allows it.
        """
        objs = list(objs)
        first = [o for o in objs if o["kind"] in ("ServiceAccount", "ConfigMap")]
        rest = [o for o in objs if o["kind"] not in ("ServiceAccount", "ConfigMap")]
        applied = Applied()

        async def one(obj: Mapping[str, Any]) -> None:
            try:
                await self.apply(obj)
            except ApiError as exc:
                if obj["kind"] != "StatefulSet" or not _immutable(exc):
                    raise
                await self._recreate_statefulset(obj, applied)

        await _gather(one(o) for o in first)
        await _gather(one(o) for o in rest)
        return applied

    async def _recreate_statefulset(self, obj: Mapping[str, Any], applied: Applied) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        await self._do(
            "apps/v1",
            "StatefulSet",
            "delete",
            name=name,
            namespace=namespace,
            body={"propagationPolicy": "Orphan"},
        )
        # The garbage collector releases the pods, then the object goes.
        async with asyncio.timeout(60):
            while await self._get("apps/v1", "StatefulSet", name=name, namespace=namespace):  # noqa: ASYNC110 (no watch here)
                await asyncio.sleep(0.2)
        await self.apply(obj)
        applied.recreated.append(f"StatefulSet/{name}")
        await self._expand_claims(obj, applied)

    async def _expand_claims(self, obj: Mapping[str, Any], applied: Applied) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        for template in obj["spec"].get("volumeClaimTemplates", []):
            wanted = template["spec"]["resources"]["requests"]["storage"]
            prefix = f"{template['metadata']['name']}-{meta['name']}-"
            selector = ",".join(
                f"{k}={v}" for k, v in obj["spec"]["selector"]["matchLabels"].items()
            )
            listing = await self._do(
                "v1", "PersistentVolumeClaim", "get", namespace=namespace, label_selector=selector
            )
            for claim in listing.get("items", []):
                claim_name = claim["metadata"]["name"]
                have = claim["spec"]["resources"]["requests"]["storage"]
                if not claim_name.startswith(prefix) or _quantity(have) >= _quantity(wanted):
                    continue
                try:
                    await self._do(
                        "v1",
                        "PersistentVolumeClaim",
                        "patch",
                        name=claim_name,
                        namespace=namespace,
                        body={"spec": {"resources": {"requests": {"storage": wanted}}}},
                        content_type=MERGE_CONTENT_TYPE,
                    )
                except ApiError as exc:
                    if exc.status not in (403, 422):
                        raise
                    applied.not_expanded.append(f"{claim_name} ({have}): {exc.message}")
                else:
                    applied.expanded.append(f"{claim_name} {have} -> {wanted}")

    async def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves `kind` (a CRD may not be installed)."""

        def run() -> bool:
            try:
                self._resource(api_version, kind)
            except ResourceNotFoundError:
                return False
            return True

        return await self._call(run)

    async def prune(
        self,
        *,
        namespace: str,
        instance: str,
        owner_uid: str,
        keep: set[tuple[str, str]],
        kinds: Mapping[str, tuple[str, str]] = names.CHILD_KINDS,
    ) -> list[tuple[str, str]]:
        """Delete children of `kinds` owned by this instance that are no longer rendered."""
        selector = f"{names.LABEL_INSTANCE}={instance},{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"

        async def listing(kind: str, api_version: str) -> list[tuple[str, str, str]]:
            found = await self._do(
                api_version, kind, "get", namespace=namespace, label_selector=selector
            )
            doomed = []
            for item in found.get("items", []):
                meta = item.get("metadata", {})
                owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
                if owner_uid in owners and (kind, meta.get("name")) not in keep:
                    doomed.append((kind, api_version, meta["name"]))
            return doomed

        doomed = [
            d
            for found in await _gather(
                listing(kind, api_version) for kind, (api_version, _) in kinds.items()
            )
            for d in found
        ]

        async def delete(kind: str, api_version: str, name: str) -> None:
            try:
                await self._do(
                    api_version,
                    kind,
                    "delete",
                    name=name,
                    namespace=namespace,
                    body={"propagationPolicy": "Background"},
                )
            except ApiError as exc:
                if exc.status != 404:
                    raise

        await _gather(delete(*d) for d in doomed)
        return [(kind, name) for kind, _, name in doomed]

    async def delete_pod(self, *, namespace: str, name: str) -> None:
        """Delete a pod (gone already is fine)."""
        try:
            await self._do("v1", "Pod", "delete", name=name, namespace=namespace)
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        secret = await self._get("v1", "Secret", name=name, namespace=namespace)
        return None if secret is None else dict(secret.get("data") or {})

    async def patch_status(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self._do(
            names.API_VERSION,
            names.KIND,
            "status.patch",
            name=name,
            namespace=namespace,
            body={"status": dict(status)},
            content_type=MERGE_CONTENT_TYPE,
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._api.close)


async def _gather(awaitables: Iterable[Any]) -> list[Any]:
    """Run all, wait for all, then raise the first failure (no request is left running)."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
