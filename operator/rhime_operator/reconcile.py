"""One reconciliation of a RhimeDeployment: validate, render, apply, prune, report status."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kopf

from rhime import catalogue
from rhime_operator import apply as apply_mod
from rhime_operator import config, names, render, stores
from rhime_operator import monitoring as monitoring_mod
from rhime_operator import runtime as runtime_mod
from rhime_operator import spec as spec_mod
from rhime_operator import status as status_mod

WorkloadsFn = Callable[[], Iterable[status_mod.Workload]]
ProblemsFn = Callable[[], Iterable[status_mod.PodProblem]]

_EVENT_MESSAGES = {
    (status_mod.READY, "True"): "every component and all infrastructure are ready",
    (status_mod.READY, "False"): "the platform is not ready",
    (status_mod.STALLED, "True"): "the spec cannot be applied",
    (status_mod.STALLED, "False"): "the spec is valid again",
    (status_mod.PAUSED, "True"): "changes are paused by spec.paused",
    (status_mod.PAUSED, "False"): "changes are applied again",
}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _read_secrets(
    spec: spec_mod.Spec, *, namespace: str, runtime: runtime_mod.Runtime
) -> dict[str, dict[str, str]]:
    secrets: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for name in sorted(spec_mod.referenced_secrets(spec)):
        data = await runtime.client.read_secret(namespace=namespace, name=name)
        if data is None:
            missing.append(name)
        else:
            secrets[name] = data
    if missing:
        raise spec_mod.SpecError(
            f"Secret(s) not found in namespace {namespace}: {', '.join(missing)}",
            reason="SecretNotFound",
        )
    wanted = [
        (name, key) for role, name in spec.secrets.items() for key in catalogue.SECRET_KEYS[role]
    ] + sorted(config.external_keys(spec))
    absent = sorted({f"{name}/{key}" for name, key in wanted if key not in secrets[name]})
    if absent:
        raise spec_mod.SpecError(
            f"Secret key(s) missing: {', '.join(absent)}", reason="SecretKeyMissing"
        )
    return secrets


async def _stores_seed(
    *, name: str, namespace: str, runtime: runtime_mod.Runtime
) -> dict[str, str]:
    """The managed stores' seed: what the operator's Secret holds, else a new one (applied
    with the Secret, so it is kept from then on)."""
    held = await runtime.client.read_secret(
        namespace=namespace, name=stores.secret_name(instance=name)
    )
    seed = (held or {}).get(stores.SEED_KEY) or stores.new_seed()
    return {stores.SEED_KEY: seed}


def fingerprint(secrets: Mapping[str, Mapping[str, str]]) -> str:
    """A digest of Secret contents, to notice a change without keeping the values."""
    text = json.dumps(secrets, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()


async def _report(
    *,
    body: kopf.Body,
    key: runtime_mod.Key,
    status: dict[str, Any],
    runtime: runtime_mod.Runtime,
) -> None:
    previous = runtime.statuses.get(key) or dict(body.get("status") or {})
    conditions = previous.get("conditions") or []
    for type_, value, reason in status_mod.transitions(conditions, status["conditions"]):
        message = _EVENT_MESSAGES.get((type_, value), f"{type_} is {value}")
        bad = (type_ == status_mod.STALLED and value == "True") or (
            type_ == status_mod.READY and value == "False" and conditions
        )
        (kopf.warn if bad else kopf.info)(body, reason=reason, message=message)
    # Fields this status does not mention are removed (merge patch: None deletes).
    patch: dict[str, Any] = dict.fromkeys(previous) | status
    if patch != previous:
        namespace, name = key
        await runtime.client.patch_status(namespace=namespace, name=name, status=patch)
    runtime.statuses[key] = status


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Pass:
    """One reconciliation of one RhimeDeployment: what every step of it reads."""

    body: kopf.Body
    runtime: runtime_mod.Runtime
    workloads: WorkloadsFn
    problems: ProblemsFn
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    name: str
    namespace: str
    generation: int
    # the status as last written, taken once the lock is held
    previous_status: Mapping[str, Any]

    @property
    def key(self) -> runtime_mod.Key:
        return (self.namespace, self.name)

    @property
    def previous(self) -> Sequence[Mapping[str, Any]]:
        conditions: Sequence[Mapping[str, Any]] = self.previous_status.get("conditions") or []
        return conditions

    async def report(self, status: dict[str, Any]) -> None:
        await _report(body=self.body, key=self.key, status=status, runtime=self.runtime)


async def reconcile(
    *,
    body: kopf.Body,
    runtime: runtime_mod.Runtime,
    workloads: WorkloadsFn,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    problems: ProblemsFn = tuple,
    reapply: bool = True,
) -> dict[str, Any]:
    """Bring the children of `body` to the desired state and write its status.

    With `reapply=False` (a child's readiness changed), only the status is refreshed.
    """
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    generation = int(meta.get("generation") or 1)
    key = (namespace, name)
    async with runtime.locks[key]:
        run = _Pass(
            body=body,
            runtime=runtime,
            workloads=workloads,
            problems=problems,
            logger=logger,
            name=name,
            namespace=namespace,
            generation=generation,
            previous_status=runtime.statuses.get(key) or dict(body.get("status") or {}),
        )
        try:
            spec = spec_mod.parse(body.get("spec"), name=name)
            # read only when applying: a status-only refresh needs no Secret
            secrets = await _secrets(run, spec=spec) if reapply and not spec.paused else None
        except spec_mod.SpecError as exc:
            return await _stall(run, error=exc)
        if secrets is not None:
            await _apply(run, spec=spec, secrets=secrets)
        # A failed apply stays reported until one succeeds, even on a status-only refresh.
        return await _refresh(run, spec=spec)


async def _secrets(run: _Pass, *, spec: spec_mod.Spec) -> dict[str, dict[str, str]]:
    """The Secrets the spec refers to, and the managed stores' seed."""
    secrets = await _read_secrets(spec, namespace=run.namespace, runtime=run.runtime)
    secrets[stores.secret_name(instance=run.name)] = await _stores_seed(
        name=run.name, namespace=run.namespace, runtime=run.runtime
    )
    return secrets


async def _stall(run: _Pass, *, error: spec_mod.SpecError) -> dict[str, Any]:
    """Nothing is applied: the status says why."""
    # said once as a warning, then quietly while it is the same
    level = logging.DEBUG if error.message in str(run.previous) else logging.WARNING
    run.logger.log(level, "Not applying %s/%s: %s", run.namespace, run.name, error.message)
    status = status_mod.render_status(
        generation=run.generation,
        spec=None,
        workloads=(),
        previous=run.previous,
        now=_now(),
        error=error,
    )
    await run.report(status)
    return status


async def _apply(run: _Pass, *, spec: spec_mod.Spec, secrets: dict[str, dict[str, str]]) -> None:
    """Apply the rendered children and prune the rest; a failure is reported and retried."""
    try:
        crds = await _monitoring_wanted(run, spec=spec)
        objs = [
            render.owned(obj, owner=run.body)
            for obj in render.render_platform(
                spec,
                instance=run.name,
                namespace=run.namespace,
                secrets=secrets,
                monitoring_crds=crds,
            )
        ]
        applied = await run.runtime.client.apply_all(objs)
        pruned = await run.runtime.client.prune(
            namespace=run.namespace,
            instance=run.name,
            owner_uid=run.body["metadata"]["uid"],
            keep={render.key(o) for o in objs},
            kinds={**names.CHILD_KINDS, **(monitoring_mod.KINDS if crds else {})},
        )
    except apply_mod.ApiError as exc:
        await _apply_failed(run, spec=spec, error=exc)
        raise kopf.TemporaryError(f"applying failed: {exc}", delay=5) from exc
    run.runtime.failures.pop(run.key, None)
    run.runtime.secret_fingerprints[run.key] = fingerprint(secrets)
    _announce(run, count=len(objs), applied=applied, pruned=pruned)
    run.logger.debug("Applied %d objects for %s/%s", len(objs), run.namespace, run.name)


async def _monitoring_wanted(run: _Pass, *, spec: spec_mod.Spec) -> bool:
    """Whether the Prometheus Operator's objects are rendered (and pruned) this time."""
    # Looked up only when wanted, or to prune what an earlier spec wanted.
    crds = (
        spec.monitoring.enabled
        or status_mod.MONITORING_READY in {c.get("type") for c in run.previous}
    ) and await _monitoring_crds(run.runtime)
    run.runtime.monitoring[run.key] = crds
    return crds


async def _apply_failed(run: _Pass, *, spec: spec_mod.Spec, error: apply_mod.ApiError) -> None:
    """Warn once per run of failures; the status holds the last one until an apply succeeds."""
    first = run.key not in run.runtime.failures
    run.runtime.failures[run.key] = str(error)
    if first:
        kopf.warn(run.body, reason="ApplyFailed", message=str(error)[:500])
    status = status_mod.render_status(
        generation=run.generation,
        spec=spec,
        workloads=run.workloads(),
        previous=run.previous,
        now=_now(),
        apply_error=run.runtime.failures[run.key],
        problems=run.problems(),
    )
    await run.report(status)


def _announce(
    run: _Pass, *, count: int, applied: apply_mod.Applied, pruned: list[tuple[str, str]]
) -> None:
    """Events for what a successful apply did besides patching."""
    for reason, items in (
        ("Recreated", applied.recreated),
        ("VolumeExpanded", applied.expanded),
    ):
        if items:
            kopf.info(run.body, reason=reason, message="; ".join(items))
    if applied.not_expanded:
        kopf.warn(
            run.body,
            reason="VolumeNotExpanded",
            message="kept their size (the storage class does not allow expansion): "
            + "; ".join(applied.not_expanded),
        )
    if run.previous_status.get("observedGeneration") != run.generation:
        kopf.info(
            run.body,
            reason="Applied",
            message=f"applied generation {run.generation}: {count} objects",
        )
    if pruned:
        kopf.info(
            run.body,
            reason="Pruned",
            message="removed " + ", ".join(f"{k}/{n}" for k, n in pruned),
        )


async def _refresh(run: _Pass, *, spec: spec_mod.Spec) -> dict[str, Any]:
    """Write the status from what the cluster shows, and replace stale pods."""
    seen, stuck = list(run.workloads()), list(run.problems())
    status = status_mod.render_status(
        generation=run.generation,
        spec=spec,
        workloads=seen,
        previous=run.previous,
        now=_now(),
        apply_error=run.runtime.failures.get(run.key),
        problems=stuck,
        monitoring=run.runtime.monitoring.get(run.key, False) if spec.monitoring.enabled else None,
    )
    await run.report(status)
    if not spec.paused:
        await _replace_stale(
            body=run.body,
            namespace=run.namespace,
            runtime=run.runtime,
            stale=status_mod.stale_pods(seen, stuck),
        )
    return status


async def _monitoring_crds(runtime: runtime_mod.Runtime) -> bool:
    """Whether the Prometheus Operator's PodMonitor and PrometheusRule kinds are served."""
    for kind, (api_version, _) in monitoring_mod.KINDS.items():
        if not await runtime.client.has_kind(api_version, kind):
            return False
    return True


async def _replace_stale(
    *,
    body: kopf.Body,
    namespace: str,
    runtime: runtime_mod.Runtime,
    stale: Iterable[status_mod.PodProblem],
) -> None:
    """Delete stuck pods of an outdated StatefulSet revision so that the new one starts."""
    for pod in stale:
        await runtime.client.delete_pod(namespace=namespace, name=pod.pod)
        kopf.info(
            body,
            reason="StalePodReplaced",
            message=f"deleted {pod.pod} ({pod.reason}, an outdated revision of {pod.component})",
        )
