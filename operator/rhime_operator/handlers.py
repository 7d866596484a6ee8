"""Kopf handlers: thin glue between events and `reconcile`.

Run: `kopf run --standalone --all-namespaces -m rhime_operator.handlers`, or with
`--namespace=NS` (repeated) and `RHIME_OPERATOR_WATCH_NAMESPACES=NS,...` to watch only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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


def _problems(namespace: str | None, name: str, **kwargs: Any) -> reconcile.ProblemsFn:
    """Stuck pods of this RhimeDeployment (image pulls, crash loops), read live."""
    index: Mapping[tuple[str, str], Iterable[status_mod.PodProblem]] = kwargs["pod_index"]
    key = (namespace or "", name)
    return lambda: list(index.get(key, ()))


def _views(namespace: str | None, name: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "workloads": _workloads(namespace, name, **kwargs),
        "problems": _problems(namespace, name, **kwargs),
    }


@kopf.on.startup()
async def operator_startup(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    operator_settings = memo.get("settings") or settings_mod.OperatorSettings.from_env(os.environ)
    if operator_settings.watch_namespaces:
        # Under a Role there is no listing namespaces or watching CRDs: don't try.
        settings.scanning.disabled = True
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


@kopf.index("", "v1", "pods", labels=CHILDREN)
def pod_index(
    *, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], status_mod.PodProblem]:
    problem = status_mod.observe_pod(body)
    return {} if problem is None else {(namespace or "", labels[names.LABEL_INSTANCE]): problem}


@kopf.on.event("", "v1", "pods", labels=CHILDREN)
def pod_event(*, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A pod got stuck or recovered: refresh its RhimeDeployment's status."""
    obj = event.get("object") or {}
    meta = obj.get("metadata", {})
    instance = meta.get("labels", {}).get(names.LABEL_INSTANCE)
    if instance is None:
        return
    problem = None if event.get("type") == "DELETED" else status_mod.observe_pod(obj)
    if memo.rhime.changed(("Pod", meta.get("namespace"), meta.get("name")), problem):
        memo.rhime.wake((meta.get("namespace"), instance), reapply=False)


def _child_event(event: kopf.RawEvent, memo: kopf.Memo, kind: str, **_: Any) -> None:
    """A child changed: a deleted one is recreated at once (not at the next resync), and a
    workload's readiness change refreshes the status."""
    obj = event.get("object") or {}
    meta = obj.get("metadata", {})
    instance = meta.get("labels", {}).get(names.LABEL_INSTANCE)
    if instance is None:
        return
    deleted = event.get("type") == "DELETED"
    owner = (meta.get("namespace"), instance)
    if kind not in ("Deployment", "StatefulSet"):
        if deleted:
            memo.rhime.wake(owner, reapply=True)
        return
    seen = (kind, meta.get("namespace"), meta.get("name"))
    before = memo.rhime.seen.get(seen)
    generation = meta.get("generation")
    fingerprint = (deleted, generation, status_mod.observe_workload(obj))
    if memo.rhime.changed(seen, fingerprint):
        # A new generation we did not make (another field manager, `kubectl scale`) is
        # re-applied at once; ours comes back as a no-op apply.
        respec = before is not None and before[1] != generation
        memo.rhime.wake(owner, reapply=deleted or respec)


for _kind, (_api_version, _plural) in names.CHILD_KINDS.items():
    _group, _, _version = _api_version.rpartition("/")
    kopf.on.event(_group, _version, _plural, labels=CHILDREN, id=f"child-{_plural}")(
        functools.partial(_child_event, kind=_kind)
    )


async def _secrets_changed(
    body: kopf.Body, *, key: runtime_mod.Key, rt: runtime_mod.Runtime
) -> bool:
    """Whether the Secrets this RhimeDeployment names differ from those last applied.

    Only the named Secrets are read (no Secret is watched or listed)."""
    try:
        spec = spec_mod.parse(body.get("spec"), name=key[1])
    except spec_mod.SpecError:
        return False
    if spec.paused:
        return False
    found: dict[str, Mapping[str, str]] = {}
    for secret in sorted(spec_mod.referenced_secrets(spec)):
        found[secret] = await rt.client.read_secret(namespace=key[0], name=secret) or {}
    return reconcile.fingerprint(found) != rt.secret_fingerprints.get(key)


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
        **_views(namespace, name, **kwargs),
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
        **_views(namespace, name, **kwargs),
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
    views = _views(namespace, name, **kwargs)
    loop = asyncio.get_running_loop()
    last_apply = loop.time()
    try:
        while not stopped:
            woken = False
            with contextlib.suppress(TimeoutError):
                woken = await asyncio.wait_for(
                    wakeup.wait(), timeout=rt.settings.secret_poll_seconds
                )
            wakeup.clear()
            if stopped:
                break
            try:
                if woken:
                    reapply = key in rt.reapply
                else:
                    due = loop.time() - last_apply >= rt.settings.resync_seconds
                    reapply = due or await _secrets_changed(body, key=key, rt=rt)
                    if not reapply:
                        continue
                rt.reapply.discard(key)
                if reapply:
                    last_apply = loop.time()
                await reconcile.reconcile(
                    body=body, runtime=rt, logger=logger, reapply=reapply, **views
                )
            except (kopf.TemporaryError, apply.ApiError) as exc:
                # Reported in the status; the next wake-up or resync tries again.
                logger.error("Re-applying %s/%s failed: %s", namespace, name, exc)
    finally:
        if stopped:
            rt.forget(key)
