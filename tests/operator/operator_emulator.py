"""kmock's Kubernetes emulator, extended with the API server behaviour the operator relies on.

- server-side apply (`PATCH` with `application/apply-patch+yaml`) creates a missing object;
- created objects get a `uid`, `generation` 1 and a `creationTimestamp`;
- every write sets a new `metadata.resourceVersion` (Kopf's JSON patches test it);
- a change of `spec` bumps `metadata.generation` (a change of `status` does not).
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from typing import Any

import aiohttp.web
import kmock

APPLY = "application/apply-patch+yaml"
_VERSIONS = itertools.count(1000)


def _stamp(data: dict[str, Any]) -> None:
    meta = data.setdefault("metadata", {})
    if "name" not in meta and "generateName" in meta:
        meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
    meta.setdefault("uid", str(uuid.uuid4()))
    meta.setdefault("generation", 1)
    meta.setdefault(
        "creationTimestamp",
        datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    meta["resourceVersion"] = str(next(_VERSIONS))


def _spec_changes(old: Any, new: Any) -> bool:
    if isinstance(old, dict) and isinstance(new, dict):
        return any(_spec_changes(old.get(k), v) for k, v in new.items())
    return bool(old != new)


class ApiServerEmulator(kmock.KubernetesEmulator):
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.action == kmock.action.CREATE:
            if isinstance(request.data, dict):
                _stamp(request.data)
        elif request.resource is not None and request.action == kmock.action.UPDATE:
            await self._prepare_update(request)
        return await super()._handle(request)

    async def _prepare_update(self, request: kmock.Request) -> None:
        key = (request.resource, request.namespace, request.name)
        version = str(next(_VERSIONS))
        async with self._lock:
            try:
                existing = self._objects[key]
            except KeyError:
                existing = None
            missing = existing is None or existing.deleted
            if isinstance(request.data, list):  # a JSON patch
                request.data.append(
                    {"op": "add", "path": "/metadata/resourceVersion", "value": version}
                )
                return
            if not isinstance(request.data, dict):
                return
            content_type = request.headers.get("Content-Type", "")
            if content_type.startswith(APPLY) and missing and not request.subresource:
                # A real API server creates the object on apply.
                obj = dict(request.data)
                obj["metadata"] = {"namespace": request.namespace, **obj.get("metadata", {})}
                _stamp(obj)
                if existing is None:
                    self._objects[key] = obj
                else:
                    existing.create(obj)
                raw = self._objects[key].raw
                await self._buses[request.resource].put({"type": "ADDED", "object": raw})
                return
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = version
            if (
                existing is not None
                and not missing
                and not request.subresource
                and "spec" in request.data
                and _spec_changes(existing.get("spec"), request.data["spec"])
            ):
                generation = int(existing.get("metadata", {}).get("generation") or 1)
                meta["generation"] = generation + 1
