"""Status of a RhimeDeployment per the Kubernetes API conventions, computed purely.

Conditions: Ready, Reconciling, Stalled, Paused, InfrastructureReady, ComponentsAvailable;
`observedGeneration` on the status and on every condition; per-component replicas.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rhime import catalogue
from rhime_operator import names
from rhime_operator import spec as spec_mod

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PAUSED = "Paused"
INFRASTRUCTURE_READY = "InfrastructureReady"
COMPONENTS_AVAILABLE = "ComponentsAvailable"
CONDITION_TYPES = (READY, RECONCILING, STALLED, PAUSED, INFRASTRUCTURE_READY, COMPONENTS_AVAILABLE)
# Only while spec.monitoring.enabled: whether the Prometheus Operator objects could be made.
MONITORING_READY = "MonitoringReady"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Workload:
    """Readiness of one Deployment or StatefulSet, as seen on the cluster."""

    component: str
    kind: str
    ready: int
    desired: int
    # The revision new pods get (StatefulSets only): a stuck pod of another one is stale.
    revision: str = ""

    @property
    def available(self) -> bool:
        return self.ready >= self.desired


# Why a container waits, as a kubelet reports it, that needs a person (or a fix) to go away.
STUCK_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodProblem:
    """A pod of a component that cannot become ready by itself."""

    component: str
    reason: str
    message: str
    pod: str = ""
    owner: str = ""  # the kind of its controller
    revision: str = ""  # its controller revision (StatefulSet pods)


def _last_exit(container: Mapping[str, Any]) -> str:
    """Why a restarting container last stopped: `OOMKilled`, `exit code 3`."""
    terminated = (container.get("lastState") or {}).get("terminated") or {}
    if not terminated:
        return ""
    reason = terminated.get("reason") or ""
    code = terminated.get("exitCode")
    return f" (last exit: {reason or 'Error'}, code {code})"


def observe_pod(body: Mapping[str, Any]) -> PodProblem | None:
    """The first stuck container of a pod (or its eviction), if any."""
    meta = body.get("metadata", {})
    labels = meta.get("labels", {})
    owners = meta.get("ownerReferences") or [{}]
    identity = {
        "component": labels.get(names.LABEL_COMPONENT, ""),
        "pod": meta.get("name", ""),
        "owner": owners[0].get("kind", ""),
        "revision": labels.get("controller-revision-hash", ""),
    }
    status = body.get("status") or {}
    if status.get("reason") == "Evicted":
        return PodProblem(
            reason="Evicted", message=str(status.get("message", ""))[:200], **identity
        )
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            said = waiting.get("message") or waiting["reason"]
            message = f"{container.get('name')}: {said}{_last_exit(container)}"
            return PodProblem(reason=waiting["reason"], message=message[:300], **identity)
    return None


def stale_pods(workloads: Iterable[Workload], problems: Iterable[PodProblem]) -> list[PodProblem]:
    """Stuck StatefulSet pods of a revision the StatefulSet no longer wants.

    The StatefulSet controller never replaces a pod that is not ready, so a bad image or
    setting, once fixed in the spec, stays stuck until the pod is deleted (the "forced
    rollback" of the Kubernetes documentation); the operator deletes it instead of a person.
    """
    wanted = {w.component: w.revision for w in workloads if w.kind == "StatefulSet"}
    return [
        p
        for p in problems
        if p.owner == "StatefulSet"
        and p.reason != "Evicted"
        and wanted.get(p.component)
        and p.revision
        and p.revision != wanted[p.component]
    ]


def observe_workload(body: Mapping[str, Any]) -> Workload:
    """Read a Deployment's or StatefulSet's readiness from its manifest."""
    labels = body.get("metadata", {}).get("labels", {})
    replicas = body.get("spec", {}).get("replicas")
    status = body.get("status") or {}
    return Workload(
        component=labels.get(names.LABEL_COMPONENT, ""),
        kind=body.get("kind", ""),
        ready=int(status.get("readyReplicas") or 0),
        desired=1 if replicas is None else int(replicas),
        revision=str(status.get("updateRevision") or ""),
    )


def expected_workloads(spec: spec_mod.Spec) -> tuple[list[str], list[str]]:
    """(components with a Deployment, managed infrastructure with a StatefulSet)."""
    components = [c.name for c in catalogue.COMPONENTS if c.kind is not catalogue.Kind.CRON]
    infra = [k.value for k in spec_mod.Infra if spec.infra(k).managed]
    return components, infra


def _condition(
    type_: str,
    status: bool | None,
    *,
    reason: str,
    message: str,
    generation: int,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    text = "Unknown" if status is None else ("True" if status else "False")
    old = previous.get(type_)
    since = old.get("lastTransitionTime", now) if old and old.get("status") == text else now
    return {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def _summary(
    names_: Sequence[str], seen: Mapping[str, Workload], *, default_desired: Mapping[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for name in names_:
        w = seen.get(name)
        rows.append(
            {
                "name": name,
                "ready": w.ready if w else 0,
                "desired": w.desired if w else default_desired.get(name, 1),
            }
        )
    return rows


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Said:
    """What one condition says, before it is stamped with the generation and the time."""

    type: str
    status: bool | None
    reason: str
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Observed:
    """The children of a valid spec as seen on the cluster, which every condition reads."""

    components: list[dict[str, Any]]
    infra: list[dict[str, Any]]
    infra_names: list[str]
    external: list[str]
    # the first problem of each component, and the first that is not an eviction
    stuck: dict[str, PodProblem]
    rolling: list[PodProblem]

    @property
    def waiting_components(self) -> list[str]:
        return [r["name"] for r in self.components if r["ready"] < r["desired"]]

    @property
    def waiting_infra(self) -> list[str]:
        return [r["name"] for r in self.infra if r["ready"] < r["desired"]]

    @property
    def components_ok(self) -> bool:
        return not self.waiting_components

    @property
    def infra_ok(self) -> bool:
        return not self.waiting_infra

    @property
    def ready_count(self) -> int:
        return len(self.components) - len(self.waiting_components)

    def why(self, waiting: Sequence[str]) -> tuple[str | None, str]:
        """The reason of the first stuck pod among `waiting`, and what every stuck one says."""
        found = [self.stuck[n] for n in waiting if n in self.stuck]
        said = "; ".join(f"{p.component}: {p.reason} ({p.message})" for p in found)
        return (found[0].reason if found else None), (f"; {said}" if said else "")

    @property
    def infra_message(self) -> str:
        waiting = self.waiting_infra
        if waiting:
            return f"waiting for {', '.join(waiting)}{self.why(waiting)[1]}"
        managed = ", ".join(self.infra_names) or "none"
        return f"managed: {managed}; external: {', '.join(self.external) or 'none'}"

    @property
    def components_message(self) -> str:
        waiting = self.waiting_components
        total = len(self.components)
        if not waiting:
            return f"all {total} components have their replicas ready"
        detail = self.why(waiting)[1]
        return (
            f"{self.ready_count}/{total} components ready; waiting for {', '.join(waiting)}{detail}"
        )


def _observe(
    spec: spec_mod.Spec, workloads: Iterable[Workload], problems: Iterable[PodProblem]
) -> _Observed:
    seen_components: dict[str, Workload] = {}
    seen_infra: dict[str, Workload] = {}
    for w in workloads:
        (seen_infra if w.kind == "StatefulSet" else seen_components)[w.component] = w
    component_names, infra_names = expected_workloads(spec)
    stuck: dict[str, PodProblem] = {}
    rolling: list[PodProblem] = []
    for problem in problems:
        stuck.setdefault(problem.component, problem)
        # An evicted pod stays listed after its replacement runs: it is history, not news.
        if problem.reason != "Evicted" and problem.component not in {p.component for p in rolling}:
            rolling.append(problem)
    return _Observed(
        components=_summary(
            component_names,
            seen_components,
            default_desired={n: spec.replicas(n) for n in component_names},
        ),
        infra=_summary(infra_names, seen_infra, default_desired={}),
        infra_names=infra_names,
        external=[k.value for k in spec_mod.Infra if not spec.infra(k).managed],
        stuck=stuck,
        rolling=rolling,
    )


def _all_ok(seen: _Observed, *, apply_error: str | None) -> bool:
    return seen.infra_ok and seen.components_ok and not apply_error


def _invalid(error: spec_mod.SpecError | None) -> list[_Said]:
    """Every condition of a spec that cannot be read: nothing else is evaluated."""
    reason = error.reason if error else "InvalidSpec"
    message = error.message if error else "the spec could not be read"
    unevaluated = "not evaluated: the spec is invalid"
    return [
        _Said(type=READY, status=False, reason=reason, message=message),
        _Said(
            type=RECONCILING,
            status=False,
            reason="Stalled",
            message="nothing is applied until this is fixed",
        ),
        _Said(type=STALLED, status=True, reason=reason, message=message),
        _Said(type=PAUSED, status=False, reason="NotPaused", message="spec.paused is false"),
        _Said(type=INFRASTRUCTURE_READY, status=None, reason="Stalled", message=unevaluated),
        _Said(type=COMPONENTS_AVAILABLE, status=None, reason="Stalled", message=unevaluated),
    ]


def _ready(seen: _Observed, *, apply_error: str | None) -> _Said:
    if apply_error:
        # held at False until an apply succeeds, whatever the children say
        return _Said(
            type=READY,
            status=False,
            reason="ApplyFailed",
            message="applying the spec failed; retrying",
        )
    ok = _all_ok(seen, apply_error=apply_error)
    if ok:
        message = "the platform is ready"
    elif not seen.components_ok:
        message = seen.components_message
    else:
        message = seen.infra_message
    reason = "Available" if ok else "NotAvailable"
    return _Said(type=READY, status=ok, reason=reason, message=message)


def _reconciling(seen: _Observed, *, paused: bool, apply_error: str | None) -> _Said:
    if apply_error and not paused:
        return _Said(type=RECONCILING, status=True, reason="ApplyFailed", message=apply_error[:500])
    if paused:
        message = "spec.paused is true: no changes are applied"
        return _Said(type=RECONCILING, status=False, reason="Paused", message=message)
    if seen.rolling:
        # Pods that cannot start, whether or not older ones still serve: say which and why.
        said = "; ".join(f"{p.component}: {p.reason} ({p.message})" for p in seen.rolling)
        reason = seen.rolling[0].reason
        return _Said(type=RECONCILING, status=True, reason=reason, message=f"stuck: {said}"[:500])
    if _all_ok(seen, apply_error=apply_error):
        message = "every child matches the spec"
        return _Said(type=RECONCILING, status=False, reason="Reconciled", message=message)
    message = "waiting for children to become ready"
    return _Said(type=RECONCILING, status=True, reason="Progressing", message=message)


def _stalled(*, paused: bool, apply_error: str | None) -> _Said:
    if apply_error:
        message = "the spec is valid; applying it failed and is retried"
    elif paused:
        message = "the spec is valid; applying is paused"
    else:
        message = "the spec is valid and applied"
    return _Said(type=STALLED, status=False, reason="Valid", message=message)


def _paused(*, paused: bool) -> _Said:
    if paused:
        message = "spec.paused is true: children are left as they are"
        return _Said(type=PAUSED, status=True, reason="PausedBySpec", message=message)
    return _Said(type=PAUSED, status=False, reason="NotPaused", message="spec.paused is false")


def _infrastructure_ready(seen: _Observed) -> _Said:
    ok = seen.infra_ok
    reason = "Ready" if ok else seen.why(seen.waiting_infra)[0] or "Waiting"
    return _Said(type=INFRASTRUCTURE_READY, status=ok, reason=reason, message=seen.infra_message)


def _components_available(seen: _Observed) -> _Said:
    ok = seen.components_ok
    reason = (
        "MinimumReplicasAvailable"
        if ok
        else seen.why(seen.waiting_components)[0] or "ReplicasUnavailable"
    )
    message = seen.components_message
    return _Said(type=COMPONENTS_AVAILABLE, status=ok, reason=reason, message=message)


def _monitoring_ready(*, applied: bool) -> _Said:
    if applied:
        message = "a PodMonitor, alert rules and dashboards are applied"
        return _Said(type=MONITORING_READY, status=True, reason="Applied", message=message)
    message = (
        "no PodMonitor or PrometheusRule CRD on this cluster: install the "
        "Prometheus Operator's CRDs; the dashboards are applied"
    )
    return _Said(
        type=MONITORING_READY, status=False, reason="PrometheusOperatorMissing", message=message
    )


def render_status(
    *,
    generation: int,
    spec: spec_mod.Spec | None,
    workloads: Iterable[Workload],
    previous: Sequence[Mapping[str, Any]],
    now: str,
    error: spec_mod.SpecError | None = None,
    apply_error: str | None = None,
    problems: Iterable[PodProblem] = (),
    monitoring: bool | None = None,
) -> dict[str, Any]:
    """The full `status` of a RhimeDeployment.

    `apply_error` is the last failed apply: it holds Ready at False until an apply succeeds.
    `monitoring`: None when not enabled, else whether the Prometheus Operator's CRDs exist.
    """
    prev = {c.get("type", ""): c for c in previous}

    def stamp(said: Iterable[_Said]) -> list[dict[str, Any]]:
        return [
            _condition(
                s.type,
                s.status,
                reason=s.reason,
                message=s.message,
                generation=generation,
                previous=prev,
                now=now,
            )
            for s in said
        ]

    if spec is None or error is not None:
        return {"observedGeneration": generation, "conditions": stamp(_invalid(error))}
    seen = _observe(spec, workloads, problems)
    said = [
        _ready(seen, apply_error=apply_error),
        _reconciling(seen, paused=spec.paused, apply_error=apply_error),
        _stalled(paused=spec.paused, apply_error=apply_error),
        _paused(paused=spec.paused),
        _infrastructure_ready(seen),
        _components_available(seen),
    ]
    if monitoring is not None:
        said.append(_monitoring_ready(applied=monitoring))
    return {
        "observedGeneration": generation,
        "componentsReady": f"{seen.ready_count}/{len(seen.components)}",
        "components": seen.components,
        "infrastructure": [{**row, "mode": "managed"} for row in seen.infra]
        + [{"name": n, "ready": 0, "desired": 0, "mode": "external"} for n in seen.external],
        "conditions": stamp(said),
    }


def transitions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """(type, status, reason) of the conditions whose status changed, for Kubernetes Events."""
    before = {c.get("type"): c.get("status") for c in previous}

    def news(c: Mapping[str, Any]) -> bool:
        if c["type"] not in before:
            # A first status: only what needs attention (stalled, paused) is news.
            return c["type"] in (STALLED, PAUSED) and c["status"] == "True"
        return bool(before[c["type"]] != c["status"])

    return [
        (c["type"], c["status"], c["reason"])
        for c in current
        if c["type"] in (READY, STALLED, PAUSED) and news(c)
    ]
