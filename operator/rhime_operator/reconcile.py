"""One reconciliation of a RhimeDeployment: validate, render, apply, prune, report status."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
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
        previous_status = runtime.statuses.get(key) or dict(body.get("status") or {})
        previous = previous_status.get("conditions") or []
        try:
            spec = spec_mod.parse(body.get("spec"), name=name)
            apply = reapply and not spec.paused
            if apply:
                secrets = await _read_secrets(spec, namespace=namespace, runtime=runtime)
                secrets[stores.secret_name(instance=name)] = await _stores_seed(
                    name=name, namespace=namespace, runtime=runtime
                )
        except spec_mod.SpecError as exc:
            level = logging.DEBUG if exc.message in str(previous) else logging.WARNING
            logger.log(level, "Not applying %s/%s: %s", namespace, name, exc.message)
            status = status_mod.render_status(
                generation=generation,
                spec=None,
                workloads=(),
                previous=previous,
                now=_now(),
                error=exc,
            )
            await _report(body=body, key=key, status=status, runtime=runtime)
            return status

        if apply:
            try:
                # Looked up only when wanted, or to prune what an earlier spec wanted.
                crds = (
                    spec.monitoring.enabled
                    or status_mod.MONITORING_READY in {c.get("type") for c in previous}
                ) and await _monitoring_crds(runtime)
                runtime.monitoring[key] = crds
                objs = [
                    render.owned(obj, owner=body)
                    for obj in render.render_platform(
                        spec,
                        instance=name,
                        namespace=namespace,
                        secrets=secrets,
                        monitoring_crds=crds,
                    )
                ]
                applied = await runtime.client.apply_all(objs)
                pruned = await runtime.client.prune(
                    namespace=namespace,
                    instance=name,
                    owner_uid=meta["uid"],
                    keep={render.key(o) for o in objs},
                    kinds={**names.CHILD_KINDS, **(monitoring_mod.KINDS if crds else {})},
                )
            except apply_mod.ApiError as exc:
                first = key not in runtime.failures
                runtime.failures[key] = str(exc)
                if first:
                    kopf.warn(body, reason="ApplyFailed", message=str(exc)[:500])
                status = status_mod.render_status(
                    generation=generation,
                    spec=spec,
                    workloads=workloads(),
                    previous=previous,
                    now=_now(),
                    apply_error=runtime.failures[key],
                    problems=problems(),
                )
                await _report(body=body, key=key, status=status, runtime=runtime)
                raise kopf.TemporaryError(f"applying failed: {exc}", delay=5) from exc
            runtime.failures.pop(key, None)
            runtime.secret_fingerprints[key] = fingerprint(secrets)
            for reason, items in (
                ("Recreated", applied.recreated),
                ("VolumeExpanded", applied.expanded),
            ):
                if items:
                    kopf.info(body, reason=reason, message="; ".join(items))
            if applied.not_expanded:
                kopf.warn(
                    body,
                    reason="VolumeNotExpanded",
                    message="kept their size (the storage class does not allow expansion): "
                    + "; ".join(applied.not_expanded),
                )
            if previous_status.get("observedGeneration") != generation:
                kopf.info(
                    body,
                    reason="Applied",
                    message=f"applied generation {generation}: {len(objs)} objects",
                )
            if pruned:
                kopf.info(
                    body,
                    reason="Pruned",
                    message="removed " + ", ".join(f"{k}/{n}" for k, n in pruned),
                )
            logger.debug("Applied %d objects for %s/%s", len(objs), namespace, name)

        # A failed apply stays reported until one succeeds, even on a status-only refresh.
        seen, stuck = list(workloads()), list(problems())
        status = status_mod.render_status(
            generation=generation,
            spec=spec,
            workloads=seen,
            previous=previous,
            now=_now(),
            apply_error=runtime.failures.get(key),
            problems=stuck,
            monitoring=runtime.monitoring.get(key, False) if spec.monitoring.enabled else None,
        )
        await _report(body=body, key=key, status=status, runtime=runtime)
        if not spec.paused:
            await _replace_stale(
                body=body,
                namespace=namespace,
                runtime=runtime,
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
