"""Kopf handlers: thin glue between events and `reconcile`.

Run: `kopf run --standalone --all-namespaces -m rhime_operator.handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from rhime_operator import (
    apply,
    names,
    reconcile,
)
from rhime_operator import (
    runtime as runtime_mod,
)
from rhime_operator import (
    settings as settings_mod,
)
from rhime_operator import (
    spec as spec_mod,
)
from rhime_operator import (
    status as status_mod,
)

RD = (names.GROUP, names.VERSION, names.PLURAL)
CHILDREN = {names.LABEL_MANAGED_BY: names.MANAGED_BY}

WorkloadIndex = Mapping[tuple[str, str], Iterable[status_mod.Workload]]


def _workloads(namespace: str | None, name: str, **kwargs: Any) -> reconcile.WorkloadsFn:
    """Readiness of this RhimeDeployment's workloads, read live from the indexes."""
    key = (namespace or "", name)
    indexes: list[WorkloadIndex] = [kwargs["deployment_index"], kwargs["statefulset_index"]]
    return lambda: [w for index in indexes for w in index.get(key, ())]


@kopf.on.startup()
async def operator_startup(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    operator_settings = memo.get("settings") or settings_mod.OperatorSettings.from_env(os.environ)
    memo.rhime = runtime_mod.Runtime(
        settings=operator_settings,
        client=apply.KubeClient(
            configuration=apply.load_configuration(),
            field_manager=operator_settings.field_manager,
            concurrency=operator_settings.apply_concurrency,
        ),
    )


@kopf.on.cleanup()
async def operator_cleanup(*, memo: kopf.Memo, **_: Any) -> None:
    await memo.rhime.client.close()


@kopf.index("apps", "v1", "deployments", labels=CHILDREN)
def deployment_index(
    *, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], status_mod.Workload]:
    return {(namespace or "", labels[names.LABEL_INSTANCE]): status_mod.observe_workload(body)}


@kopf.index("apps", "v1", "statefulsets", labels=CHILDREN)
def statefulset_index(
    *, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], status_mod.Workload]:
    return {(namespace or "", labels[names.LABEL_INSTANCE]): status_mod.observe_workload(body)}


@kopf.index(*RD)
def rhimedeployment_index(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], str]:
    """Which RhimeDeployments reference a Secret: (namespace, secret) -> RhimeDeployment."""
    try:
        secrets = spec_mod.referenced_secrets(spec_mod.parse(spec, name=name))
    except spec_mod.SpecError:
        return {}
    return {(namespace or "", secret): name for secret in secrets}


def _wake_owner(event: Mapping[str, Any], memo: kopf.Memo, kind: str) -> None:
    obj = event.get("object") or {}
    meta = obj.get("metadata", {})
    instance = meta.get("labels", {}).get(names.LABEL_INSTANCE)
    if instance is None:
        return
    deleted = event.get("type") == "DELETED"
    fingerprint = (deleted, status_mod.observe_workload(obj))
    if memo.rhime.changed((kind, meta.get("namespace"), meta.get("name")), fingerprint):
        # A deleted child is recreated at once; a readiness change only refreshes the status.
        memo.rhime.wake((meta.get("namespace"), instance), reapply=deleted)


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
def deployment_event(*, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _wake_owner(event, memo, "Deployment")


@kopf.on.event("apps", "v1", "statefulsets", labels=CHILDREN)
def statefulset_event(*, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _wake_owner(event, memo, "StatefulSet")


@kopf.on.event("v1", "secrets")
def secret_event(
    *, event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
) -> None:
    index: Mapping[tuple[str, str], Iterable[str]] = kwargs["rhimedeployment_index"]
    users = list(index.get((namespace or "", name), ()))
    if not users:
        return
    obj: Mapping[str, Any] = event.get("object") or {}
    data: Mapping[str, str] = obj.get("data") or {}
    fingerprint = (event.get("type") == "DELETED", tuple(sorted(data.items())))
    if memo.rhime.changed(("Secret", namespace, name), fingerprint):
        for user in users:
            memo.rhime.wake((namespace or "", user), reapply=True)


@kopf.on.create(*RD)
@kopf.on.resume(*RD)
async def rhimedeployment_create(
    *,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    await reconcile.reconcile(
        body=body,
        runtime=memo.rhime,
        logger=logger,
        workloads=_workloads(namespace, name, **kwargs),
    )


@kopf.on.update(*RD, field="spec")
async def rhimedeployment_update(
    *,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    await reconcile.reconcile(
        body=body,
        runtime=memo.rhime,
        logger=logger,
        workloads=_workloads(namespace, name, **kwargs),
    )


@kopf.daemon(*RD, cancellation_timeout=5.0)
async def rhimedeployment_resync(
    *,
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """The drift timer: re-apply every `resync_seconds`, or at once when a child changes."""
    rt: runtime_mod.Runtime = memo.rhime
    key = (namespace or "", name)
    wakeup = rt.wakeup(key)
    workloads = _workloads(namespace, name, **kwargs)
    try:
        while not stopped:
            woken = False
            with contextlib.suppress(TimeoutError):
                woken = await asyncio.wait_for(wakeup.wait(), timeout=rt.settings.resync_seconds)
            wakeup.clear()
            if stopped:
                break
            reapply = not woken or key in rt.reapply
            rt.reapply.discard(key)
            try:
                await reconcile.reconcile(
                    body=body, runtime=rt, logger=logger, workloads=workloads, reapply=reapply
                )
            except (kopf.TemporaryError, apply.ApiError) as exc:
                # Reported in the status; the next wake-up or resync tries again.
                logger.error("Re-applying %s/%s failed: %s", namespace, name, exc)
    finally:
        if stopped:
            rt.forget(key)
