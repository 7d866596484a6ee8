"""The operator against a real API server: apply, status, repair, deletion, secrets, pausing."""

from __future__ import annotations

from typing import Any

from kube import DEPLOYMENTS, RD, Kube, condition, rd, until
from operator_harness import Operator

from rhime import catalogue
from rhime_operator import names, network
from rhime_operator import spec as spec_mod


def expected_children(instance: str) -> set[tuple[str, str]]:
    expected = {("ServiceAccount", instance), ("NetworkPolicy", f"{instance}-default-deny")}
    for c in catalogue.COMPONENTS:
        expected.add(("ConfigMap", f"{instance}-{c.name}-env"))
        expected.add(
            ("CronJob" if c.kind is catalogue.Kind.CRON else "Deployment", f"{instance}-{c.name}")
        )
        # every component has its own policy: ingress for servers, egress for all
        expected.add(("NetworkPolicy", f"{instance}-{c.name}"))
        if c.serves_traffic:
            expected.add(("Service", f"{instance}-{c.name}"))
    for infra in ("nats", "mongo", "redis"):
        expected |= {
            ("StatefulSet", f"{instance}-{infra}"),
            ("Service", f"{instance}-{infra}"),
            ("NetworkPolicy", f"{instance}-{infra}"),
        }
    return expected


async def created(kube: Kube, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    await kube.create_secrets()
    body = await kube.create(RD, rd(name, spec))
    expected = expected_children(name)
    await until(lambda: _has(kube, name, expected))
    return body


async def _has(kube: Kube, name: str, expected: set[tuple[str, str]]) -> bool:
    return expected <= set(await kube.children(name))


async def test_create_applies_every_child_with_owner_references(
    kube: Kube, operator: Operator
) -> None:
    body = await created(kube, "demo")
    children = await kube.children("demo")
    assert set(children) == expected_children("demo")
    for child in children.values():
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == body["metadata"]["uid"]
        assert owner["kind"] == names.KIND
        assert owner["controller"] is True
    # the API server keeps the egress rules as rendered (DNS, ipBlocks with excepts, ports)
    stored = children["NetworkPolicy", "demo-spotify"]["spec"]
    assert stored["policyTypes"] == ["Ingress", "Egress"]
    rendered = network.egress_rules(
        spec_mod.parse({}, name="demo"),
        component=catalogue.get("spotify"),
        instance="demo",
        namespace=kube.namespace,
    )
    assert stored["egress"] == rendered
    assert any("ipBlock" in peer for rule in stored["egress"] for peer in rule["to"])
    mongo = children["StatefulSet", "demo-mongo"]["spec"]["template"]["spec"]
    assert [c["name"] for c in mongo["containers"]] == ["mongo", "users"]
    deny = children["NetworkPolicy", "demo-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert deny.get("egress", []) == []


async def _rd(kube: Kube, name: str) -> dict[str, Any]:
    return await kube.get(RD, name) or {}


async def ready(kube: Kube, name: str) -> dict[str, Any] | None:
    """Mark pods ready (as a kubelet would) until the RhimeDeployment says Ready."""
    await kube.mark_pods_ready(name)
    body = await _rd(kube, name)
    return body if condition(body, "Ready").get("status") == "True" else None


async def test_status_follows_real_workload_readiness_and_kubectl_reads_it(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo")
    body = await until(lambda: _rd(kube, "demo"))
    body = await until(
        lambda: _with(kube, "demo", lambda b: condition(b, "Ready").get("status") == "False")
    )
    assert condition(body, "Reconciling")["status"] == "True"

    waiting = kube.kubectl("wait", "--for=condition=Ready", "rd/demo", "--timeout=1s", check=False)
    assert waiting.returncode != 0

    body = await until(lambda: ready(kube, "demo"), timeout=60)
    generation = body["metadata"]["generation"]
    assert body["status"]["observedGeneration"] == generation
    for type_, value in (
        ("Ready", "True"),
        ("InfrastructureReady", "True"),
        ("ComponentsAvailable", "True"),
        ("Reconciling", "False"),
        ("Stalled", "False"),
        ("Paused", "False"),
    ):
        assert condition(body, type_)["status"] == value, type_
        assert condition(body, type_)["observedGeneration"] == generation
    deployments = sum(c.kind is not catalogue.Kind.CRON for c in catalogue.COMPONENTS)
    assert body["status"]["componentsReady"] == f"{deployments}/{deployments}"

    assert kube.kubectl("wait", "--for=condition=Ready", "rd/demo", "--timeout=30s").returncode == 0
    table = kube.kubectl("get", "rd").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "COMPONENTS", "AGE"]
    assert table[1].split()[:3] == ["demo", "True", f"{deployments}/{deployments}"]

    # A scale-up is a new generation: not ready until the new replicas are.
    await kube.patch(RD, "demo", {"spec": {"components": {"feed": {"replicas": 2}}}})
    body = await until(
        lambda: _with(
            kube,
            "demo",
            lambda b: (
                b["status"].get("observedGeneration") == generation + 1
                and condition(b, "Ready").get("status") == "False"
            ),
        )
    )
    assert "feed" in condition(body, "ComponentsAvailable")["message"]
    feed = await kube.get(DEPLOYMENTS, "demo-feed")
    assert feed is not None
    assert feed["spec"]["replicas"] == 2
    assert ("PodDisruptionBudget", "demo-feed") in await kube.children("demo")
    await until(lambda: ready(kube, "demo"), timeout=60)


async def _with(kube: Kube, name: str, check: Any) -> dict[str, Any] | None:
    body = await _rd(kube, name)
    return body if body.get("status") and check(body) else None


async def test_deleted_children_are_recreated_from_the_watch_not_the_resync(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo")
    # Resync is 10 minutes in these tests: a repair within a minute comes from the watch
    # (bench/reconcile.py measures how soon: about a second).
    for resource, name, kind in (
        (DEPLOYMENTS, "demo-post", "Deployment"),
        ("v1/services", "demo-feed", "Service"),
        ("v1/configmaps", "demo-like-env", "ConfigMap"),
        ("networking.k8s.io/v1/networkpolicies", "demo-redis", "NetworkPolicy"),
    ):
        await kube.delete(resource, name)
        await until(lambda k=kind, n=name: _has(kube, "demo", {(k, n)}))


async def test_deleting_the_resource_lets_the_garbage_collector_remove_every_child(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo")
    await kube.delete(RD, "demo")
    await until(lambda: _gone(kube, "demo"), timeout=60)


async def _gone(kube: Kube, name: str) -> bool:
    return await kube.get(RD, name) is None and not await kube.children(name)


async def test_secret_change_rolls_only_the_pods_that_use_it(
    kube: Kube, operator: Operator
) -> None:
    await created(kube, "demo")

    async def checksums() -> dict[str, str]:
        return {
            name: child["spec"]["template"]["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
            for (kind, name), child in (await kube.children("demo")).items()
            if kind == "Deployment"
        }

    before = await checksums()
    await kube.patch(
        "v1/secrets", "rhime-spotify", {"data": {"RHIME_SPOTIFY_CLIENT_SECRET": "bmV3"}}
    )
    users = {
        f"demo-{c.name}"
        for c in catalogue.COMPONENTS
        if catalogue.Secret.SPOTIFY in c.secrets and c.kind is not catalogue.Kind.CRON
    }
    assert users  # spotify and the recommendation worker

    async def rolled() -> dict[str, str] | None:
        now = await checksums()
        return now if all(now[name] != before[name] for name in users) else None

    after = await until(rolled)
    assert {name for name in before if before[name] != after[name]} == users


async def test_paused_resource_applies_nothing_until_resumed(
    kube: Kube, operator: Operator
) -> None:
    await kube.create_secrets()
    await kube.create(RD, rd("still", {"paused": True}))
    body = await until(
        lambda: _with(kube, "still", lambda b: condition(b, "Paused").get("status") == "True")
    )
    assert condition(body, "Reconciling")["reason"] == "Paused"
    assert await kube.children("still") == {}

    await kube.patch(RD, "still", {"spec": {"paused": False}})
    await until(lambda: _has(kube, "still", expected_children("still")))


async def test_pausing_freezes_children(kube: Kube, operator: Operator) -> None:
    await created(kube, "demo")
    await kube.patch(RD, "demo", {"spec": {"paused": True}})
    await until(lambda: _with(kube, "demo", lambda b: condition(b, "Paused")["status"] == "True"))
    await kube.patch(RD, "demo", {"spec": {"components": {"post": {"replicas": 4}}}})
    await until(
        lambda: _with(
            kube, "demo", lambda b: b["status"]["observedGeneration"] == b["metadata"]["generation"]
        )
    )
    post = await kube.get(DEPLOYMENTS, "demo-post")
    assert post is not None
    assert post["spec"]["replicas"] == 1

    await kube.patch(RD, "demo", {"spec": {"paused": False}})

    async def scaled() -> bool:
        post = await kube.get(DEPLOYMENTS, "demo-post")
        return bool(post and post["spec"]["replicas"] == 4)

    await until(scaled)


async def test_events_report_major_transitions(kube: Kube, operator: Operator) -> None:
    await kube.create_secrets()
    await kube.create(RD, rd("bad", {"components": {"nope": {}}}))

    async def reasons() -> set[str]:
        return {e.get("reason", "") for e in await kube.events("bad")}

    await until(lambda: _includes(reasons, {"InvalidSpec"}))
    await kube.patch(RD, "bad", {"spec": {"components": None}})
    await until(lambda: _includes(reasons, {"Valid", "Applied"}))


async def _includes(reasons: Any, wanted: set[str]) -> bool:
    return bool(wanted <= await reasons())


async def test_network_and_mongo_settings_survive_the_crd_into_the_children(
    kube: Kube, operator: Operator
) -> None:
    """The CRD declares the fields (an undeclared one would be pruned without a word)."""
    raw = {
        "network": {"internet": {"cidr": "203.0.113.0/24"}},
        "infrastructure": {"mongo": {"managed": {"authentication": False}}},
    }
    await created(kube, "net", raw)
    children = await kube.children("net")
    peers = [
        peer
        for rule in children["NetworkPolicy", "net-spotify"]["spec"]["egress"]
        for peer in rule["to"]
    ]
    assert {"ipBlock": {"cidr": "203.0.113.0/24"}} in peers
    mongo = children["StatefulSet", "net-mongo"]["spec"]["template"]["spec"]
    assert [c["name"] for c in mongo["containers"]] == ["mongo"]  # no users container
