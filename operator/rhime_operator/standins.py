"""Development stand-ins for the services a real deployment finds outside the cluster: the
fake Spotify (accounts service and Web API, `rhime.fakespotify`) and moto's S3 server.

Rendered only with `spec.development.standIns`, as a Deployment and a Service each, from the
platform image (its `dev` target carries moto). `config.standin_env` points the components at
them and `network.render_standin_policy` admits their clients. State is in memory: a restart
forgets Spotify grants and uploaded pictures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rhime import catalogue
from rhime_operator import config, names, workloads
from rhime_operator import spec as spec_mod

StandIn = config.StandIn

PORT_NAME = "http"
SPOTIFY_CLIENT_ID_KEY, SPOTIFY_CLIENT_SECRET_KEY = catalogue.SECRET_KEYS[catalogue.Secret.SPOTIFY]
# Paths that answer 200 once the server is up (the fake's /v1 wants a token).
HEALTH_PATHS: Mapping[StandIn, str] = {
    StandIn.SPOTIFY: "/_fake/stats",
    StandIn.S3: "/moto-api/",
}
DEFAULT_RESOURCES: Mapping[StandIn, dict[str, Any]] = {
    StandIn.SPOTIFY: {"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
    StandIn.S3: {"requests": {"cpu": "20m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
}


def command(standin: StandIn) -> list[str]:
    port = str(config.STANDIN_PORTS[standin])
    if standin is StandIn.SPOTIFY:
        return [
            "uvicorn",
            "--factory",
            "rhime.fakespotify.app:create_app",
            "--host",
            "0.0.0.0",
            "--port",
            port,
        ]
    return ["moto_server", "-H", "0.0.0.0", "-p", port]


def env(spec: spec_mod.Spec, *, standin: StandIn) -> list[dict[str, Any]]:
    if standin is StandIn.SPOTIFY:
        # The fake accepts exactly the app credentials the spotify components read.
        secret = spec.secret_name(catalogue.Secret.SPOTIFY)
        return [
            {
                "name": "RHIME_FAKE_SPOTIFY_CLIENT_ID",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": SPOTIFY_CLIENT_ID_KEY}},
            },
            {
                "name": "RHIME_FAKE_SPOTIFY_CLIENT_SECRET",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": SPOTIFY_CLIENT_SECRET_KEY}},
            },
            # Image links in its answers end up in pages, so they use the browser's address.
            {
                "name": "RHIME_FAKE_SPOTIFY_PUBLIC_URL",
                "value": config.standin_browser_url(StandIn.SPOTIFY),
            },
        ]
    # Pods reach moto as <rd>-s3.<namespace>.svc, which moto would otherwise take for a
    # bucket's virtual host; buckets are in the path (the user component asks for that).
    return [{"name": "S3_IGNORE_SUBDOMAIN_BUCKETNAME", "value": "true"}]


def checksum(spec: spec_mod.Spec, *, standin: StandIn, secrets: config.SecretData) -> str:
    """A digest of the Secret keys the stand-in reads, so that changing them restarts it."""
    read: dict[str, str | None] = {}
    if standin is StandIn.SPOTIFY:
        data = secrets.get(spec.secret_name(catalogue.Secret.SPOTIFY), {})
        read = {key: data.get(key) for key in (SPOTIFY_CLIENT_ID_KEY, SPOTIFY_CLIENT_SECRET_KEY)}
    return hashlib.sha256(json.dumps(read, sort_keys=True).encode()).hexdigest()


def _probe(standin: StandIn, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATHS[standin], "port": PORT_NAME}, **timing}


def render_container(spec: spec_mod.Spec, *, standin: StandIn) -> dict[str, Any]:
    return {
        "name": standin.value,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": command(standin),
        "env": env(spec, standin=standin),
        "ports": [
            {"name": PORT_NAME, "containerPort": config.STANDIN_PORTS[standin], "protocol": "TCP"}
        ],
        "resources": dict(DEFAULT_RESOURCES[standin]),
        # Tilt's live update syncs sources into every container of the image it built.
        "securityContext": workloads.container_security_context(read_only=not spec.live_reload),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "startupProbe": _probe(standin, periodSeconds=2, failureThreshold=30),
        "livenessProbe": _probe(standin, periodSeconds=10, failureThreshold=3),
        "readinessProbe": _probe(standin, periodSeconds=5, failureThreshold=3),
    }


def render_deployment(
    spec: spec_mod.Spec,
    *,
    standin: StandIn,
    instance: str,
    namespace: str,
    secrets: config.SecretData,
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "serviceAccountName": workloads.serviceaccount_name(instance=instance),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": workloads.pod_security_context(),
        "containers": [render_container(spec, standin=standin)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in spec.image.pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.metadata(
            name=names.child_name(instance, standin.value),
            namespace=namespace,
            instance=instance,
            component=standin.value,
        ),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {
                "matchLabels": names.selector_labels(instance=instance, component=standin.value)
            },
            # One process holds the state; two during a rollout would split it.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": names.labels(instance=instance, component=standin.value),
                    "annotations": {
                        names.CHECKSUM_ANNOTATION: checksum(spec, standin=standin, secrets=secrets)
                    },
                },
                "spec": pod,
            },
        },
    }


def render_service(*, standin: StandIn, instance: str, namespace: str) -> dict[str, Any]:
    port = config.STANDIN_PORTS[standin]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.metadata(
            name=names.child_name(instance, standin.value),
            namespace=namespace,
            instance=instance,
            component=standin.value,
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector_labels(instance=instance, component=standin.value),
            "ports": [
                {"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }
