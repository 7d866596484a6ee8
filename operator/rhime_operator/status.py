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

    def cond(type_: str, value: bool | None, reason: str, message: str) -> dict[str, Any]:
        return _condition(
            type_,
            value,
            reason=reason,
            message=message,
            generation=generation,
            previous=prev,
            now=now,
        )

    if spec is None or error is not None:
        reason = error.reason if error else "InvalidSpec"
        message = error.message if error else "the spec could not be read"
        return {
            "observedGeneration": generation,
            "conditions": [
                cond(READY, False, reason, message),
                cond(RECONCILING, False, "Stalled", "nothing is applied until this is fixed"),
                cond(STALLED, True, reason, message),
                cond(PAUSED, False, "NotPaused", "spec.paused is false"),
                cond(INFRASTRUCTURE_READY, None, "Stalled", "not evaluated: the spec is invalid"),
                cond(COMPONENTS_AVAILABLE, None, "Stalled", "not evaluated: the spec is invalid"),
            ],
        }

    seen_components: dict[str, Workload] = {}
    seen_infra: dict[str, Workload] = {}
    for w in workloads:
        (seen_infra if w.kind == "StatefulSet" else seen_components)[w.component] = w
    component_names, infra_names = expected_workloads(spec)
    components = _summary(
        component_names,
        seen_components,
        default_desired={n: spec.replicas(n) for n in component_names},
    )
    infra = _summary(infra_names, seen_infra, default_desired={})
    waiting_components = [r["name"] for r in components if r["ready"] < r["desired"]]
    waiting_infra = [r["name"] for r in infra if r["ready"] < r["desired"]]
    infra_ok = not waiting_infra
    components_ok = not waiting_components
    ready_count = len(components) - len(waiting_components)
    external = [k.value for k in spec_mod.Infra if not spec.infra(k).managed]
    stuck: dict[str, PodProblem] = {}
    rolling: list[PodProblem] = []
    for problem in problems:
        stuck.setdefault(problem.component, problem)
        # An evicted pod stays listed after its replacement runs: it is history, not news.
        if problem.reason != "Evicted" and problem.component not in {p.component for p in rolling}:
            rolling.append(problem)

    def why(waiting: Sequence[str]) -> tuple[str | None, str]:
        """The reason of the first stuck pod among `waiting`, and what every stuck one says."""
        found = [stuck[n] for n in waiting if n in stuck]
        said = "; ".join(f"{p.component}: {p.reason} ({p.message})" for p in found)
        return (found[0].reason if found else None), (f"; {said}" if said else "")

    comp_reason, comp_detail = why(waiting_components)
    infra_reason, infra_detail = why(waiting_infra)

    infra_msg = (
        f"waiting for {', '.join(waiting_infra)}{infra_detail}"
        if waiting_infra
        else "managed: "
        + (", ".join(infra_names) or "none")
        + "; external: "
        + (", ".join(external) or "none")
    )
    comp_msg = (
        f"{ready_count}/{len(components)} components ready; waiting for "
        + ", ".join(waiting_components)
        + comp_detail
        if waiting_components
        else f"all {len(components)} components have their replicas ready"
    )
    all_ok = infra_ok and components_ok and not apply_error
    if apply_error and not spec.paused:
        reconciling = cond(RECONCILING, True, "ApplyFailed", apply_error[:500])
    elif spec.paused:
        reconciling = cond(
            RECONCILING, False, "Paused", "spec.paused is true: no changes are applied"
        )
    elif rolling:
        # Pods that cannot start, whether or not older ones still serve: say which and why.
        said = "; ".join(f"{p.component}: {p.reason} ({p.message})" for p in rolling)
        reconciling = cond(RECONCILING, True, rolling[0].reason, f"stuck: {said}"[:500])
    elif all_ok:
        reconciling = cond(RECONCILING, False, "Reconciled", "every child matches the spec")
    else:
        reconciling = cond(RECONCILING, True, "Progressing", "waiting for children to become ready")
    return {
        "observedGeneration": generation,
        "componentsReady": f"{ready_count}/{len(components)}",
        "components": components,
        "infrastructure": [{**row, "mode": "managed"} for row in infra]
        + [{"name": n, "ready": 0, "desired": 0, "mode": "external"} for n in external],
        "conditions": [
            cond(READY, False, "ApplyFailed", "applying the spec failed; retrying")
            if apply_error
            else cond(
                READY,
                all_ok,
                "Available" if all_ok else "NotAvailable",
                "the platform is ready" if all_ok else comp_msg if not components_ok else infra_msg,
            ),
            reconciling,
            cond(
                STALLED,
                False,
                "Valid",
                "the spec is valid; applying it failed and is retried"
                if apply_error
                else "the spec is valid; applying is paused"
                if spec.paused
                else "the spec is valid and applied",
            ),
            cond(
                PAUSED,
                spec.paused,
                "PausedBySpec" if spec.paused else "NotPaused",
                "spec.paused is true: children are left as they are"
                if spec.paused
                else "spec.paused is false",
            ),
            cond(
                INFRASTRUCTURE_READY,
                infra_ok,
                "Ready" if infra_ok else infra_reason or "Waiting",
                infra_msg,
            ),
            cond(
                COMPONENTS_AVAILABLE,
                components_ok,
                "MinimumReplicasAvailable"
                if components_ok
                else comp_reason or "ReplicasUnavailable",
                comp_msg,
            ),
        ]
        + (
            []
            if monitoring is None
            else [
                cond(
                    MONITORING_READY,
                    monitoring,
                    "Applied" if monitoring else "PrometheusOperatorMissing",
                    "a PodMonitor, alert rules and dashboards are applied"
                    if monitoring
                    else "no PodMonitor or PrometheusRule CRD on this cluster: install the "
                    "Prometheus Operator's CRDs; the dashboards are applied",
                )
            ]
        ),
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
