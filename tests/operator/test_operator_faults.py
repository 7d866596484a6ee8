"""Bad input and faults against the real API server: each gives a precise condition or error,
nothing is half-applied, and reconciliation resumes by itself.

No emulator is needed here: failures are injected with the API server's own admission
(ValidatingAdmissionPolicy), a restart of kube-apiserver, or another field manager.
"""

from __future__ import annotations

import copy
import pathlib
import uuid
from typing import Any

import pytest
import yaml
from kube import DEPLOYMENTS, RD, ROOT, STATEFULSETS, Kube, KubeError, condition, rd, until
from operator_harness import Operator, render_chart, running_operator
from test_operator_kube import created, expected_children

from rhime import catalogue
from rhime_operator import names

EXAMPLES = {p.stem: p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))}


async def _rd(kube: Kube, name: str) -> dict[str, Any]:
    return await kube.get(RD, name) or {}


async def _condition_is(kube: Kube, name: str, type_: str, **wanted: str) -> dict[str, Any] | None:
    body = await _rd(kube, name)
    found = condition(body, type_)
    return body if found and all(found.get(k) == v for k, v in wanted.items()) else None


def _plural(kind: str) -> str:
    if kind.endswith("y"):  # NetworkPolicy
        return kind.lower()[:-1] + "ies"
    return kind.lower() + ("es" if kind.endswith("ss") else "s")


async def _dry_run(kube: Kube, doc: dict[str, Any]) -> None:
    """Create `doc` with server-side dry run and strict field validation."""
    doc = copy.deepcopy(doc)
    group_version = doc["apiVersion"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = names.PLURAL if doc["kind"] == names.KIND else _plural(doc["kind"])
    cluster_scoped = doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace")
    if cluster_scoped:
        path = f"{prefix}/{plural}"
    else:
        doc["metadata"]["namespace"] = kube.namespace
        path = f"{prefix}/namespaces/{kube.namespace}/{plural}"
    await kube.request("POST", f"{path}?dryRun=All&fieldValidation=Strict", doc)


@pytest.mark.parametrize("example", EXAMPLES)
async def test_every_example_is_accepted_by_the_api_server(kube: Kube, example: str) -> None:
    docs = [d for d in yaml.safe_load_all(EXAMPLES[example]) if d]
    assert docs
    for doc in docs:
        await _dry_run(kube, doc)


@pytest.mark.parametrize(
    "values",
    [{"watchNamespaces": []}, {"watchNamespaces": ["shop"], "rhimeDeployment": {"enabled": True}}],
    ids=["cluster-wide", "namespaced"],
)
async def test_every_object_the_chart_renders_is_accepted(
    kube: Kube, values: dict[str, Any]
) -> None:
    for doc in render_chart(release="rhime", namespace=kube.namespace, values=values):
        if doc["metadata"].get("namespace") == "shop":
            doc["metadata"]["namespace"] = kube.namespace
        await _dry_run(kube, doc)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"components": {"feed": {"replicas": "two"}}}, "replicas"),
        ({"surprise": True}, "surprise"),
        (
            {
                "infrastructure": {
                    "mongo": {"managed": {}, "external": {"secretRef": {"name": "m", "key": "url"}}}
                }
            },
            "managed",
        ),
    ],
    ids=["wrong-type", "unknown-field", "managed-and-external"],
)
async def test_the_api_server_refuses_bad_specs_with_the_field_named(
    kube: Kube, spec: dict[str, Any], says: str
) -> None:
    with pytest.raises(KubeError) as refused:
        await kube.request(
            "POST",
            kube.path(RD) + "?fieldValidation=Strict",
            {**rd("bad", spec), "metadata": {"name": "bad", "namespace": kube.namespace}},
        )
    assert refused.value.status in (400, 422)
    assert says in refused.value.body


async def test_a_spec_the_operator_refuses_stalls_with_nothing_applied(
    kube: Kube, operator: Operator
) -> None:
    await kube.create_secrets()
    # Valid for the schema, not for the catalogue: the operator is the one to refuse it.
    await kube.create(RD, rd("bad", {"components": {"nope": {"replicas": 2}}}))
    body = await until(lambda: _condition_is(kube, "bad", "Stalled", status="True"))
    assert condition(body, "Stalled")["reason"] == "InvalidSpec"
    assert "nope" in condition(body, "Stalled")["message"]
    assert condition(body, "Ready")["status"] == "False"
    assert await kube.children("bad") == {}


async def test_a_missing_secret_stalls_until_it_is_created(kube: Kube, operator: Operator) -> None:
    await kube.create(RD, rd("demo"))
    body = await until(lambda: _condition_is(kube, "demo", "Stalled", status="True"))
    stalled = condition(body, "Stalled")
    assert stalled["reason"] == "SecretNotFound"
    assert "rhime-auth" in stalled["message"]
    assert await kube.children("demo") == {}

    await kube.create_secrets()
    await until(lambda: _condition_is(kube, "demo", "Stalled", status="False"))
    assert expected_children("demo") <= set(await kube.children("demo"))


async def test_a_secret_without_a_required_key_stalls_and_names_it(
    kube: Kube, operator: Operator
) -> None:
    await kube.create_secrets()
    await kube.patch("v1/secrets", "rhime-auth", {"data": {"RHIME_ENCRYPTION_KEY": None}})
    await kube.create(RD, rd("demo"))
    body = await until(lambda: _condition_is(kube, "demo", "Stalled", status="True"))
    stalled = condition(body, "Stalled")
    assert stalled["reason"] == "SecretKeyMissing"
    assert "rhime-auth/RHIME_ENCRYPTION_KEY" in stalled["message"]
    assert await kube.children("demo") == {}

    await kube.patch("v1/secrets", "rhime-auth", {"data": {"RHIME_ENCRYPTION_KEY": "Yw=="}})
    await until(lambda: _condition_is(kube, "demo", "Stalled", status="False"))


def _deny_policy(kube: Kube, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Admission that refuses writes to one Deployment: a fault from the real server."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!(object.metadata.namespace == '{kube.namespace}'"
                    " && object.metadata.name == 'demo-feed')",
                    "message": "demo-feed is frozen by policy",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return policy, binding


async def test_a_failed_apply_is_reported_until_an_apply_succeeds(
    kube: Kube, operator: Operator
) -> None:
    name = f"deny-{uuid.uuid4().hex[:8]}"
    policy, binding = _deny_policy(kube, name)
    base = "/apis/admissionregistration.k8s.io/v1"
    await kube.request("POST", f"{base}/validatingadmissionpolicies", policy)
    await kube.request("POST", f"{base}/validatingadmissionpolicybindings", binding)
    await kube.create_secrets()

    async def frozen() -> bool:
        # The policy takes a moment to load: probe it with a dry-run create.
        probe = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "demo-feed"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        }
        try:
            await kube.request("POST", kube.path(DEPLOYMENTS) + "?dryRun=All", probe)
        except KubeError as exc:
            return "frozen" in exc.body
        return False

    try:
        await until(frozen)
        await kube.create(RD, rd("demo"))
        body = await until(lambda: _condition_is(kube, "demo", "Reconciling", reason="ApplyFailed"))
        assert "frozen by policy" in condition(body, "Reconciling")["message"]
        # Everything else is applied and becomes ready: the failure must stay in sight.
        deployments = sum(c.kind is not catalogue.Kind.CRON for c in catalogue.COMPONENTS)
        body = await until(lambda: _all_but_feed_ready(kube, deployments), timeout=60)
        assert condition(body, "Ready")["status"] == "False"
        assert condition(body, "Stalled")["status"] == "False"
        assert ("Deployment", "demo-feed") not in await kube.children("demo")
    finally:
        await kube.request("DELETE", f"{base}/validatingadmissionpolicybindings/{name}")
        await kube.request("DELETE", f"{base}/validatingadmissionpolicies/{name}")

    await until(lambda: _has_child(kube, "demo", ("Deployment", "demo-feed")), timeout=60)
    await until(lambda: _ready(kube, "demo"), timeout=60)


async def _all_but_feed_ready(kube: Kube, deployments: int) -> dict[str, Any] | None:
    await kube.mark_pods_ready("demo")
    body = await _rd(kube, "demo")
    all_but_one = (
        body.get("status", {}).get("componentsReady") == f"{deployments - 1}/{deployments}"
    )
    infra = condition(body, "InfrastructureReady").get("status") == "True"
    return body if all_but_one and infra else None


async def _has_child(kube: Kube, name: str, child: tuple[str, str]) -> bool:
    return child in await kube.children(name)


async def _ready(kube: Kube, name: str) -> dict[str, Any] | None:
    await kube.mark_pods_ready(name)
    return await _condition_is(kube, name, "Ready", status="True")


async def test_minimal_to_production_in_place_recreates_statefulsets_and_prunes(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo")
    await until(lambda: _ready(kube, "demo"), timeout=60)
    nats_pod = await until(lambda: _pods(kube, "demo", "nats"))

    production = yaml.safe_load(EXAMPLES["production"])["spec"]
    for role, secret in production["secrets"].items():
        data = {"rhime-auth": "auth", "rhime-spotify": "spotify", "rhime-aws": "aws"}
        (source,) = [s for s, r in data.items() if r == role]
        original = await kube.get("v1/secrets", source)
        assert original is not None
        await kube.create("v1/secrets", {"metadata": {"name": secret}, "data": original["data"]})
    await kube.create(
        "v1/secrets", {"metadata": {"name": "rhime-mongo-atlas"}, "data": {"url": "bW9uZ28="}}
    )
    await kube.patch(RD, "demo", {"spec": production})

    async def moved() -> bool:
        nats = await kube.get(STATEFULSETS, "demo-nats")
        claims = (nats or {}).get("spec", {}).get("volumeClaimTemplates", [{}])
        storage = claims[0].get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
        return storage == "20Gi" and await kube.get(STATEFULSETS, "demo-mongo") is None

    await until(moved, timeout=60)
    body = await until(lambda: _condition_is(kube, "demo", "Reconciling"))
    assert condition(body, "Reconciling")["reason"] != "ApplyFailed"
    reasons = {e["reason"] for e in await kube.events("demo")}
    assert "Recreated" in reasons
    assert "ApplyFailed" not in reasons
    # The pod was orphaned, not deleted, and the new StatefulSet adopted it.
    nats = await kube.get(STATEFULSETS, "demo-nats")
    assert nats is not None
    await until(lambda: _owned_by(kube, nats_pod, nats["metadata"]["uid"]), timeout=30)
    await until(lambda: _ready(kube, "demo"), timeout=60)


async def _pods(kube: Kube, instance: str, component: str) -> str | None:
    selector = f"{names.LABEL_INSTANCE}={instance},{names.LABEL_COMPONENT}={component}"
    pods = await kube.list("v1/pods", selector=selector)
    return pods[0]["metadata"]["name"] if pods else None


async def _owned_by(kube: Kube, pod: str, uid: str) -> bool:
    found = await kube.get("v1/pods", pod)
    return bool(found) and uid in [o["uid"] for o in found["metadata"].get("ownerReferences", [])]


async def test_another_field_manager_is_overruled_at_once(kube: Kube, operator: Operator) -> None:
    await created(kube, "demo")
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo-post", "namespace": kube.namespace},
        "spec": {"replicas": 5},
    }
    await kube.request(
        "PATCH",
        kube.path(DEPLOYMENTS, "demo-post") + "?fieldManager=someone-else&force=true",
        scale,
        **{"Content-Type": "application/apply-patch+yaml"},
    )

    async def restored() -> bool:
        post = await kube.get(DEPLOYMENTS, "demo-post")
        return bool(post and post["spec"]["replicas"] == 1)

    await until(restored)  # resync is 10 minutes here: this is the watch


async def test_a_stuck_pod_is_named_in_the_status(kube: Kube, operator: Operator) -> None:
    await created(kube, "demo")
    pod = await until(lambda: _pods(kube, "demo", "feed"))
    waiting = {
        "name": "feed",
        "image": "ghcr.io/rhime/rhime:latest",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
    }
    await kube.patch(
        "v1/pods", pod, {"status": {"containerStatuses": [waiting]}}, subresource="status"
    )
    body = await until(
        lambda: _condition_is(kube, "demo", "ComponentsAvailable", reason="ImagePullBackOff")
    )
    assert (
        "feed: ImagePullBackOff (feed: Back-off pulling image)"
        in condition(body, "ComponentsAvailable")["message"]
    )


async def test_a_stuck_pod_of_an_outdated_statefulset_revision_is_replaced(
    kube: Kube, operator: Operator
) -> None:
    """The StatefulSet controller waits forever on a pod that never gets ready; once the spec
    wants another revision, the operator deletes the stuck pod so that it can start."""
    await created(kube, "demo")
    old = await until(lambda: kube.get("v1/pods", "demo-redis-0"))
    redis = {"managed": {"image": "rhime.invalid/redis:other", "imagePullPolicy": "Never"}}
    await kube.patch(RD, "demo", {"spec": {"infrastructure": {"redis": redis}}})

    async def new_revision() -> str | None:
        found = await kube.get(STATEFULSETS, "demo-redis")
        revision = (found or {}).get("status", {}).get("updateRevision")
        return (
            revision if revision != old["metadata"]["labels"]["controller-revision-hash"] else None
        )

    revision = await until(new_revision)
    stuck = {
        "name": "redis",
        "image": "rhime.invalid/redis:old",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}},
    }
    await kube.patch(
        "v1/pods", "demo-redis-0", {"status": {"containerStatuses": [stuck]}}, subresource="status"
    )

    async def replaced() -> dict[str, Any] | None:
        pod = await kube.get("v1/pods", "demo-redis-0")
        fresh = pod and pod["metadata"]["uid"] != old["metadata"]["uid"]
        return pod if fresh else None

    pod = await until(replaced)
    assert pod["metadata"]["labels"]["controller-revision-hash"] == revision
    reasons = {e["reason"] for e in await kube.events("demo")}
    assert "StalePodReplaced" in reasons


async def test_reconciliation_resumes_after_the_api_server_restarts(
    kube: Kube, operator: Operator
) -> None:
    await kube.create_secrets()
    await kube.create(RD, rd("demo"))
    kube.plane.restart("kube-apiserver")  # while the first apply is under way
    await until(lambda: _has_all(kube, "demo"), timeout=90)
    await kube.delete(DEPLOYMENTS, "demo-post")
    await until(lambda: _has_child(kube, "demo", ("Deployment", "demo-post")), timeout=60)


async def _has_all(kube: Kube, name: str) -> bool:
    return expected_children(name) <= set(await kube.children(name))


async def test_the_cluster_wide_install_runs_without_a_refused_request(
    kube: Kube, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_operator(
        kube, tmp_path=tmp_path, monkeypatch=monkeypatch, clusterwide=True
    ) as running:
        await created(kube, "demo")
        await until(lambda: _ready(kube, "demo"), timeout=60)
        await kube.delete(DEPLOYMENTS, "demo-post")
        await until(lambda: _has_child(kube, "demo", ("Deployment", "demo-post")))
    assert running.forbidden() == []
