"""Deployments, CronJobs, PodDisruptionBudgets and the ServiceAccount of the components."""

from __future__ import annotations

from typing import Any

from rhime import catalogue
from rhime_operator import config, names
from rhime_operator import spec as spec_mod

APP_UID = 10001
PRE_STOP_SECONDS = 5
# SIGTERM comes after the preStop pause; then RHIME_SHUTDOWN_GRACE_SECONDS (10) to finish.
TERMINATION_GRACE_SECONDS = PRE_STOP_SECONDS + 10 + 5
# A CronJob run that hangs (a stalled store) would block every later one (Forbid).
CRON_DEADLINE_SECONDS = {"like-reconcile": 3600, "music-refresh": 4 * 3600}
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "96Mi"},
    "limits": {"memory": "384Mi"},
}


def serviceaccount_name(*, instance: str) -> str:
    return instance


def render_serviceaccount(*, instance: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": names.metadata(
            name=serviceaccount_name(instance=instance),
            namespace=namespace,
            instance=instance,
            component="platform",
        ),
        "automountServiceAccountToken": False,
    }


# With spec.development.liveReload, the server runs in a loop; killing the pid in this file
# (what Tilt's live update does after syncing sources) restarts it on the new code.
RELOAD_PID_FILE = "/tmp/rhime.pid"


def command(spec: spec_mod.Spec, *, component: catalogue.Component) -> list[str]:
    serve = ["rhime", "serve", component.name]
    if not spec.live_reload or component.kind is catalogue.Kind.CRON:
        return serve
    loop = f"while :; do {' '.join(serve)} & echo $! > {RELOAD_PID_FILE}; wait $!; sleep 1; done"
    return ["sh", "-c", loop]


def container_security_context(*, read_only: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security_context(*, uid: int = APP_UID) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def port_name(component: catalogue.Component) -> str:
    return "grpc" if component.kind is catalogue.Kind.GRPC else "http"


def probes(component: catalogue.Component) -> dict[str, Any]:
    """Readiness, liveness and startup probes from the catalogue (none for CronJobs)."""
    if component.kind is catalogue.Kind.CRON:
        return {}
    if component.probe.grpc:
        live: dict[str, Any] = {"grpc": {"port": component.port}}
        ready: dict[str, Any] = {"grpc": {"port": component.port}}
    else:
        live = {"httpGet": {"path": component.probe.liveness, "port": port_name(component)}}
        ready = {"httpGet": {"path": component.probe.readiness, "port": port_name(component)}}
    return {
        "startupProbe": {**live, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {**live, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {**ready, "periodSeconds": 5, "failureThreshold": 3},
    }


def render_container(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str
) -> dict[str, Any]:
    override = spec.override(component.name)
    container: dict[str, Any] = {
        "name": component.name,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": command(spec, component=component),
        "envFrom": config.env_from(component=component, instance=instance),
        "resources": dict(override.resources or DEFAULT_RESOURCES),
        "securityContext": container_security_context(read_only=not spec.live_reload),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        **probes(component),
    }
    env = config.env(spec, component=component, instance=instance)
    if env:
        container["env"] = env
    if component.kind is not catalogue.Kind.CRON:
        container["ports"] = [
            {"name": port_name(component), "containerPort": component.port, "protocol": "TCP"}
        ]
    if component.serves_traffic:
        # Endpoints drop a terminating pod a moment after the kubelet sends SIGTERM: keep
        # serving meanwhile, or in-flight requests through the gateway end in 502s.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
    return container


def render_pod_template(
    spec: spec_mod.Spec,
    *,
    component: catalogue.Component,
    instance: str,
    namespace: str,
    secrets: config.SecretData,
) -> dict[str, Any]:
    override = spec.override(component.name)
    pod: dict[str, Any] = {
        "serviceAccountName": serviceaccount_name(instance=instance),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [render_container(spec, component=component, instance=instance)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
    }
    if component.kind is catalogue.Kind.CRON:
        pod["restartPolicy"] = "OnFailure"
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in spec.image.pull_secrets]
    if override.node_selector:
        pod["nodeSelector"] = dict(override.node_selector)
    if override.tolerations:
        pod["tolerations"] = [dict(t) for t in override.tolerations]
    if override.affinity:
        pod["affinity"] = dict(override.affinity)
    digest = config.checksum(
        spec, component=component, instance=instance, namespace=namespace, secrets=secrets
    )
    return {
        "metadata": {
            "labels": names.labels(instance=instance, component=component.name),
            "annotations": {names.CHECKSUM_ANNOTATION: digest},
        },
        "spec": pod,
    }


def render_deployment(
    spec: spec_mod.Spec,
    *,
    component: catalogue.Component,
    instance: str,
    namespace: str,
    secrets: config.SecretData,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.metadata(
            name=names.child_name(instance, component.name),
            namespace=namespace,
            instance=instance,
            component=component.name,
        ),
        "spec": {
            "replicas": spec.replicas(component.name),
            "revisionHistoryLimit": 3,
            "selector": {
                "matchLabels": names.selector_labels(instance=instance, component=component.name)
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": render_pod_template(
                spec, component=component, instance=instance, namespace=namespace, secrets=secrets
            ),
        },
    }


def render_cronjob(
    spec: spec_mod.Spec,
    *,
    component: catalogue.Component,
    instance: str,
    namespace: str,
    secrets: config.SecretData,
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": names.metadata(
            name=names.child_name(instance, component.name),
            namespace=namespace,
            instance=instance,
            component=component.name,
        ),
        "spec": {
            "schedule": spec.schedule(component),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": names.labels(instance=instance, component=component.name)},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": CRON_DEADLINE_SECONDS.get(component.name, 3600),
                    "ttlSecondsAfterFinished": 86400,
                    "template": render_pod_template(
                        spec,
                        component=component,
                        instance=instance,
                        namespace=namespace,
                        secrets=secrets,
                    ),
                },
            },
        },
    }


def render_pdb(*, component: str, instance: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": names.metadata(
            name=names.child_name(instance, component),
            namespace=namespace,
            instance=instance,
            component=component,
        ),
        "spec": {
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": names.selector_labels(instance=instance, component=component)
            },
        },
    }
