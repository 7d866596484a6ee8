"""The real Kopf operator against kmock: create, scale, drift, readiness, invalid, secrets."""

from __future__ import annotations

from typing import Any

from operator_cluster import RD, Cluster

from rhime import catalogue
from rhime_operator import names

DEPLOYMENTS = "apps/v1/deployments"


def _expected_children(instance: str) -> set[tuple[str, str]]:
    expected = {("ServiceAccount", instance)}
    for c in catalogue.COMPONENTS:
        expected.add(("ConfigMap", f"{instance}-{c.name}-env"))
        expected.add(
            ("CronJob" if c.kind is catalogue.Kind.CRON else "Deployment", f"{instance}-{c.name}")
        )
        if c.serves_traffic:
            expected.add(("Service", f"{instance}-{c.name}"))
            expected.add(("NetworkPolicy", f"{instance}-{c.name}"))
    for infra in ("nats", "mongo", "redis"):
        expected |= {("StatefulSet", f"{instance}-{infra}"), ("Service", f"{instance}-{infra}")}
    return expected


async def test_create_applies_every_child_with_owner_references(cluster: Cluster) -> None:
    await cluster.create_secrets()
    rd = await cluster.create(
        RD,
        {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            "metadata": {"name": "demo"},
            "spec": {},
        },
    )
    expected = _expected_children("demo")
    children = await cluster.until(
        lambda: (c := cluster.children("demo")) and expected <= set(c) and c
    )
    uid = rd["metadata"]["uid"]
    for child in children.values():
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == uid
        assert owner["kind"] == names.KIND
        assert owner["controller"] is True


def _rd(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": name},
        "spec": spec or {},
    }


def _condition(rd: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for condition in (rd or {}).get("status", {}).get("conditions", []):
        if condition["type"] == type_:
            return dict(condition)
    return {}


async def _created(
    cluster: Cluster, name: str, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    await cluster.create_secrets()
    rd = await cluster.create(RD, _rd(name, spec))
    expected = _expected_children(name)
    await cluster.until(lambda: expected <= set(cluster.children(name)))
    return rd


async def test_scaling_a_component_patches_its_deployment_and_adds_a_pdb(cluster: Cluster) -> None:
    await _created(cluster, "demo")
    assert ("PodDisruptionBudget", "demo-feed") not in cluster.children("demo")

    await cluster.patch(RD, "demo", {"spec": {"components": {"feed": {"replicas": 3}}}})

    await cluster.until(
        lambda: (cluster.get(DEPLOYMENTS, "demo-feed") or {}).get("spec", {}).get("replicas") == 3
    )
    await cluster.until(lambda: ("PodDisruptionBudget", "demo-feed") in cluster.children("demo"))
    assert cluster.get(DEPLOYMENTS, "demo-post")["spec"]["replicas"] == 1  # type: ignore[index]


async def test_deleted_children_are_recreated(cluster: Cluster) -> None:
    await _created(cluster, "demo")

    await cluster.delete(DEPLOYMENTS, "demo-post")
    await cluster.delete("v1/services", "demo-feed")
    assert ("Deployment", "demo-post") not in cluster.children("demo")

    await cluster.until(
        lambda: (
            {("Deployment", "demo-post"), ("Service", "demo-feed")} <= set(cluster.children("demo"))
        )
    )


async def test_ready_children_make_the_resource_ready_for_its_generation(cluster: Cluster) -> None:
    await _created(cluster, "demo")
    rd = await cluster.until(
        lambda: _condition(cluster.get(RD, "demo"), "Ready") and cluster.get(RD, "demo")
    )
    assert _condition(rd, "Ready")["status"] == "False"
    assert _condition(rd, "Reconciling")["status"] == "True"

    for (kind, name), child in cluster.children("demo").items():
        if kind in ("Deployment", "StatefulSet"):
            resource = "apps/v1/deployments" if kind == "Deployment" else "apps/v1/statefulsets"
            replicas = child["spec"]["replicas"]
            await cluster.patch(
                resource, name, {"status": {"readyReplicas": replicas}}, subresource="status"
            )

    rd = await cluster.until(
        lambda: (
            _condition(cluster.get(RD, "demo"), "Ready").get("status") == "True"
            and cluster.get(RD, "demo")
        )
    )
    generation = rd["metadata"]["generation"]
    assert rd["status"]["observedGeneration"] == generation
    assert _condition(rd, "Ready")["observedGeneration"] == generation
    assert _condition(rd, "InfrastructureReady")["status"] == "True"
    assert _condition(rd, "ComponentsAvailable")["status"] == "True"
    assert _condition(rd, "Reconciling")["status"] == "False"
    assert _condition(rd, "Stalled")["status"] == "False"
    deployments = sum(c.kind is not catalogue.Kind.CRON for c in catalogue.COMPONENTS)
    assert rd["status"]["componentsReady"] == f"{deployments}/{deployments}"

    # A scale-up is a new generation: not ready until the new replicas are.
    await cluster.patch(RD, "demo", {"spec": {"components": {"feed": {"replicas": 2}}}})
    rd = await cluster.until(
        lambda: (
            (r := cluster.get(RD, "demo"))
            and r["status"].get("observedGeneration") == generation + 1
            and _condition(r, "Ready").get("status") == "False"
            and r
        )
    )
    assert "feed" in _condition(rd, "ComponentsAvailable")["message"]


async def test_invalid_spec_stalls_and_applies_nothing(cluster: Cluster) -> None:
    await cluster.create_secrets()
    await cluster.create(RD, _rd("bad", {"components": {"nope": {"replicas": 2}}}))

    rd = await cluster.until(
        lambda: (
            _condition(cluster.get(RD, "bad"), "Stalled").get("status") == "True"
            and cluster.get(RD, "bad")
        )
    )
    stalled = _condition(rd, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "nope" in stalled["message"]
    assert _condition(rd, "Ready")["status"] == "False"
    assert cluster.children("bad") == {}
    assert cluster.applies("bad") == []


async def test_missing_secret_stalls_with_its_name(cluster: Cluster) -> None:
    await cluster.create(RD, _rd("nosecret"))
    rd = await cluster.until(
        lambda: (
            _condition(cluster.get(RD, "nosecret"), "Stalled").get("status") == "True"
            and cluster.get(RD, "nosecret")
        )
    )
    assert _condition(rd, "Stalled")["reason"] == "SecretNotFound"
    assert "rhime-auth" in _condition(rd, "Stalled")["message"]
    assert cluster.applies("nosecret") == []


async def test_secret_change_rolls_only_the_pods_that_use_it(cluster: Cluster) -> None:
    await _created(cluster, "demo")

    def checksums() -> dict[str, str]:
        return {
            name: child["spec"]["template"]["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
            for (kind, name), child in cluster.children("demo").items()
            if kind == "Deployment"
        }

    before = checksums()
    await cluster.patch(
        "v1/secrets", "rhime-spotify", {"data": {"RHIME_SPOTIFY_CLIENT_SECRET": "bmV3"}}
    )
    users = {
        f"demo-{c.name}"
        for c in catalogue.COMPONENTS
        if catalogue.Secret.SPOTIFY in c.secrets and c.kind is not catalogue.Kind.CRON
    }
    assert users  # spotify and the recommendation worker
    after = await cluster.until(
        lambda: (now := checksums()) and all(now[name] != before[name] for name in users) and now
    )
    changed = {name for name in before if before[name] != after[name]}
    assert changed == users


async def test_paused_resource_applies_nothing_and_says_so(cluster: Cluster) -> None:
    await cluster.create_secrets()
    await cluster.create(RD, _rd("still", {"paused": True}))

    rd = await cluster.until(
        lambda: (
            _condition(cluster.get(RD, "still"), "Paused").get("status") == "True"
            and cluster.get(RD, "still")
        )
    )
    assert _condition(rd, "Reconciling")["reason"] == "Paused"
    assert cluster.applies("still") == []
    assert cluster.children("still") == {}


async def test_pausing_freezes_children_until_resumed(cluster: Cluster) -> None:
    await _created(cluster, "demo")
    await cluster.patch(RD, "demo", {"spec": {"paused": True}})
    await cluster.until(
        lambda: _condition(cluster.get(RD, "demo"), "Paused").get("status") == "True"
    )

    await cluster.patch(RD, "demo", {"spec": {"components": {"post": {"replicas": 4}}}})
    await cluster.until(
        lambda: (
            cluster.get(RD, "demo")["status"]["observedGeneration"]  # type: ignore[index]
            == cluster.get(RD, "demo")["metadata"]["generation"]
        )
    )  # type: ignore[index]
    assert cluster.get(DEPLOYMENTS, "demo-post")["spec"]["replicas"] == 1  # type: ignore[index]

    await cluster.patch(RD, "demo", {"spec": {"paused": False}})
    await cluster.until(
        lambda: (cluster.get(DEPLOYMENTS, "demo-post") or {}).get("spec", {}).get("replicas") == 4
    )


async def test_deleting_the_resource_releases_it(cluster: Cluster) -> None:
    rd = await _created(cluster, "demo")
    assert cluster.get(RD, "demo")["metadata"].get("finalizers")  # type: ignore[index]
    await cluster.delete(RD, "demo")
    # The operator stops its resync loop and lets go; owner references (checked above) make
    # Kubernetes' garbage collector delete the children.
    await cluster.until(lambda: cluster.get(RD, "demo") is None)
    assert all(
        c["metadata"]["ownerReferences"][0]["uid"] == rd["metadata"]["uid"]
        for c in cluster.children("demo").values()
    )


async def test_events_report_major_transitions(cluster: Cluster) -> None:
    await cluster.create_secrets()
    await cluster.create(RD, _rd("bad", {"components": {"nope": {}}}))

    def reasons() -> set[str]:
        return {
            e.get("reason", "")
            for e in cluster.events()
            if e.get("involvedObject", {}).get("name") == "bad"
        }

    await cluster.until(lambda: "InvalidSpec" in reasons())
    await cluster.patch(RD, "bad", {"spec": {"components": None}})
    await cluster.until(lambda: {"Valid", "Applied"} <= reasons())


async def test_apply_failure_is_reported_in_the_status(cluster: Cluster) -> None:
    await cluster.create_secrets()
    failing = cluster.kmock["patch /apis/apps/v1/namespaces/ns1/deployments/broken-feed"]
    failing << 500
    await cluster.create(RD, _rd("broken"))

    rd = await cluster.until(
        lambda: (
            _condition(cluster.get(RD, "broken"), "Reconciling").get("reason") == "ApplyFailed"
            and cluster.get(RD, "broken")
        )
    )
    assert "500" in _condition(rd, "Reconciling")["message"]
    assert _condition(rd, "Ready")["status"] == "False"
