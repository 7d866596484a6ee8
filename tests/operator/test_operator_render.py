"""Pure renderers: every object the platform needs, checked with plain asserts."""

from __future__ import annotations

import base64
import pathlib
from collections.abc import Iterable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rhime import catalogue
from rhime_operator import config, names, network, render, spec, status, stores

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
NS = "prod"
SECRETS = {
    "rhime-auth": {"RHIME_ACCESS_TOKEN_SECRET": "YQ=="},
    "rhime-spotify": {"RHIME_SPOTIFY_CLIENT_ID": "Yg=="},
    "rhime-aws": {"AWS_ACCESS_KEY_ID": "Yw=="},
    "mongo-url": {"url": "bW9uZ29kYjovL2V4dA=="},
}
EXTERNAL_MONGO = {"infrastructure": {"mongo": {"external": {"secretRef": {"name": "mongo-url"}}}}}


def _platform(
    raw: dict[str, Any] | None = None, *, name: str = "rd", secrets: Any = None
) -> list[dict[str, Any]]:
    parsed = spec.parse(raw or {}, name=name)
    # the reconciler adds the stores seed to what it read
    held = {
        **(secrets or SECRETS),
        **{stores.secret_name(instance=name): {stores.SEED_KEY: "c2VlZA=="}},
    }
    return render.render_platform(parsed, instance=name, namespace=NS, secrets=held)


def _by_key(objs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {render.key(o): o for o in objs}


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    template = (
        obj["spec"]["template"]
        if obj["kind"] != "CronJob"
        else (obj["spec"]["jobTemplate"]["spec"]["template"])
    )
    (container,) = template["spec"]["containers"]
    return dict(container)


def _example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


PLATFORMS = {
    "minimal": lambda: _platform(_example("minimal.yaml")["spec"], name="rhime"),
    "production": lambda: _platform(
        _example("production.yaml")["spec"],
        name="rhime",
        secrets={**SECRETS, "rhime-mongo-atlas": {"url": "eA=="}},
    ),
    "dev": lambda: _platform(_example("dev.yaml")["spec"], name="rhime"),
}


@pytest.mark.parametrize("version", ["1.29", "1.37"])
@pytest.mark.parametrize("example", sorted(PLATFORMS))
def test_every_rendered_manifest_validates_strictly(example: str, version: str) -> None:
    objs = PLATFORMS[example]()
    owner = {"metadata": {"name": "rhime", "uid": "0000-1111"}}
    for obj in objs:
        kubernetes_validate.validate(render.owned(obj, owner=owner), version, strict=True)


def test_every_component_gets_a_workload_and_only_servers_get_a_service() -> None:
    objs = _by_key(_platform())
    for c in catalogue.COMPONENTS:
        workload = "CronJob" if c.kind is catalogue.Kind.CRON else "Deployment"
        assert (workload, f"rd-{c.name}") in objs
        assert (("Service", f"rd-{c.name}") in objs) == c.serves_traffic
    grpc = objs["Service", "rd-user-graph-view"]["spec"]["ports"][0]
    assert grpc["appProtocol"] == "grpc"
    assert grpc["port"] == catalogue.get("user-graph-view").port


def test_command_env_and_config_follow_the_catalogue() -> None:
    objs = _by_key(_platform())
    for c in catalogue.COMPONENTS:
        workload = objs[
            "CronJob" if c.kind is catalogue.Kind.CRON else "Deployment", f"rd-{c.name}"
        ]
        container = _container(workload)
        assert container["command"] == ["rhime", "serve", c.name]
        data = objs["ConfigMap", f"rd-{c.name}-env"]["data"]
        assert data["RHIME_COMPONENT"] == c.name
        assert data["RHIME_NAMESPACE"] == "rd"
        # managed store URLs carry credentials: from the stores Secret, not here
        assert "RHIME_MONGO_URL" not in data
        assert "RHIME_REDIS_URL" not in data
        assert "RHIME_NATS_URL" not in data
        assert ("RHIME_S3_BUCKET" in data) == (catalogue.Backing.S3 in c.backing)
        assert [s for s in container["envFrom"] if "secretRef" in s] == []  # never a whole one
        refs = {
            (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        stores_refs = {
            ("rd-stores", f"{c.name}.{store.value}-url")
            for store in (catalogue.Backing.REDIS, catalogue.Backing.NATS, catalogue.Backing.MONGO)
            if store in c.backing
        }
        assert refs == stores_refs | {
            (f"rhime-{secret}", key) for secret, keys in c.secret_keys().items() for key in keys
        }


@pytest.mark.parametrize(
    ("key", "holders"),
    [
        (catalogue.ACCESS_TOKEN_KEY, {"auth", "gateway"}),
        (catalogue.ENCRYPTION_KEY, {"spotify", "recommendation-worker"}),
        (catalogue.INTERNAL_KEY, {c.name for c in catalogue.COMPONENTS}),
    ],
)
def test_each_auth_key_reaches_only_the_components_that_use_it(key: str, holders: set[str]) -> None:
    objs = _platform()
    holding = {
        o["metadata"]["labels"][names.LABEL_COMPONENT]
        for o in objs
        if o["kind"] in ("Deployment", "CronJob")
        for e in _container(o).get("env", [])
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == key
    }
    assert holding == holders


def test_the_service_url_template_reaches_the_rendered_services() -> None:
    objs = _by_key(_platform())
    template = objs["ConfigMap", "rd-feed-env"]["data"]["RHIME_SERVICE_URL_TEMPLATE"]
    for c in catalogue.COMPONENTS:
        if c.serves_traffic:
            url = catalogue.service_url(c.name, template)
            service = objs["Service", f"rd-{c.name}"]
            assert (
                url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
            )


def test_managed_infrastructure_urls_name_the_statefulsets_services() -> None:
    objs = _by_key(_platform())
    stored = {
        k: base64.b64decode(v).decode() for k, v in objs["Secret", "rd-stores"]["data"].items()
    }
    assert stored["feed.redis-url"].endswith("@rd-redis.prod.svc:6379/0")
    assert stored["feed.nats-url"].endswith("@rd-nats.prod.svc:4222")
    assert stored["feed.mongo-url"].endswith("@rd-mongo.prod.svc:27017/?authSource=admin")
    for infra in ("mongo", "redis", "nats"):
        sts = objs["StatefulSet", f"rd-{infra}"]
        assert sts["spec"]["serviceName"] == f"rd-{infra}"
        assert objs["Service", f"rd-{infra}"]["spec"]["clusterIP"] == "None"
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert "--jetstream" in _container(objs["StatefulSet", "rd-nats"])["args"]


def test_external_mongo_comes_from_its_secret_and_is_not_run() -> None:
    objs = _by_key(_platform(EXTERNAL_MONGO))
    assert ("StatefulSet", "rd-mongo") not in objs
    assert ("NetworkPolicy", "rd-mongo") not in objs
    assert "RHIME_MONGO_URL" not in objs["ConfigMap", "rd-feed-env"]["data"]
    env = {e["name"]: e for e in _container(objs["Deployment", "rd-feed"])["env"]}
    assert env["RHIME_MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "mongo-url",
        "key": "url",
    }
    web = {e["name"] for e in _container(objs["Deployment", "rd-web"])["env"]}
    assert "RHIME_MONGO_URL" not in web  # web uses no MongoDB


def test_probes_come_from_the_catalogue() -> None:
    objs = _by_key(_platform())
    for c in catalogue.COMPONENTS:
        if c.kind is catalogue.Kind.CRON:
            container = _container(objs["CronJob", f"rd-{c.name}"])
            assert "readinessProbe" not in container
            assert "ports" not in container
            continue
        container = _container(objs["Deployment", f"rd-{c.name}"])
        assert container["ports"][0]["containerPort"] == c.port
        if c.probe.grpc:
            assert container["readinessProbe"]["grpc"] == {"port": c.port}
        else:
            assert container["readinessProbe"]["httpGet"]["path"] == c.probe.readiness
            assert container["livenessProbe"]["httpGet"]["path"] == c.probe.liveness


def test_pods_run_as_non_root_with_a_read_only_root_filesystem() -> None:
    for obj in _platform():
        if obj["kind"] not in ("Deployment", "StatefulSet", "CronJob"):
            continue
        template = (
            obj["spec"]["template"]
            if obj["kind"] != "CronJob"
            else (obj["spec"]["jobTemplate"]["spec"]["template"])
        )
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        assert template["spec"]["automountServiceAccountToken"] is False
        for container in template["spec"]["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}


def test_pod_disruption_budgets_only_where_replicas_exceed_one() -> None:
    objs = _by_key(_platform({"components": {"feed": {"replicas": 3}, "post": {"replicas": 1}}}))
    pdbs = {name for kind, name in objs if kind == "PodDisruptionBudget"}
    assert pdbs == {"rd-feed"}
    assert objs["Deployment", "rd-feed"]["spec"]["replicas"] == 3


def _allowed_from(policy: dict[str, Any]) -> set[str] | None:
    """Components allowed in by a policy; None when anyone may connect."""
    allowed: set[str] = set()
    for rule in policy["spec"]["ingress"]:
        if "from" not in rule:
            return None
        allowed |= {
            peer["podSelector"]["matchLabels"][names.LABEL_COMPONENT] for peer in rule["from"]
        }
    return allowed


def test_network_policies_open_only_the_gateway_and_follow_calls_and_backing() -> None:
    objs = _by_key(_platform())
    deny = objs["NetworkPolicy", "rd-default-deny"]["spec"]
    assert deny["ingress"] == []
    assert deny["podSelector"]["matchLabels"] == {names.LABEL_INSTANCE: "rd"}
    assert _allowed_from(objs["NetworkPolicy", "rd-gateway"]) is None
    assert _allowed_from(objs["NetworkPolicy", "rd-user-graph-view"]) == {
        "feed",
        "recommendation",
        "recommendation-worker",
    }
    # the user component gathers the account's part of a data export; user-graph asks
    # after people whose `user.created` has not reached it yet
    assert _allowed_from(objs["NetworkPolicy", "rd-auth"]) == {"gateway", "user", "user-graph"}
    for c in catalogue.COMPONENTS:
        if c.serves_traffic and not c.public:
            callers = {x.name for x in catalogue.COMPONENTS if c.name in x.calls}
            assert _allowed_from(objs["NetworkPolicy", f"rd-{c.name}"]) == callers
    mongo_users = {c.name for c in catalogue.COMPONENTS if catalogue.Backing.MONGO in c.backing}
    assert _allowed_from(objs["NetworkPolicy", "rd-mongo"]) == mongo_users
    assert "gateway" not in mongo_users
    assert "web" not in (_allowed_from(objs["NetworkPolicy", "rd-redis"]) or set())


def test_every_call_names_a_component_with_a_service() -> None:
    for c in catalogue.COMPONENTS:
        for target in c.calls:
            assert catalogue.get(target).serves_traffic, (c.name, target)
    assert network.callers("gateway") == ["web"]


def test_gateway_exposure_service_type_and_ingress() -> None:
    objs = _by_key(
        _platform(
            {
                "gateway": {
                    "service": {"type": "LoadBalancer"},
                    "ingress": {
                        "enabled": True,
                        "host": "rhime.example.com",
                        "className": "nginx",
                        "tls": {"secretName": "tls"},
                    },
                }
            }
        )
    )
    assert objs["Service", "rd-gateway"]["spec"]["type"] == "LoadBalancer"
    assert objs["Service", "rd-feed"]["spec"]["type"] == "ClusterIP"
    ingress = objs["Ingress", "rd-gateway"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["rhime.example.com"], "secretName": "tls"}]
    assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "rd-gateway"
    assert (
        objs["ConfigMap", "rd-web-env"]["data"]["RHIME_PUBLIC_URL"] == "https://rhime.example.com"
    )
    assert ("Ingress", "rd-gateway") not in _by_key(_platform())


def test_cronjob_schedules_default_from_catalogue_and_can_be_overridden() -> None:
    objs = _by_key(_platform({"schedules": {"music-refresh": "0 4 * * *"}}))
    assert objs["CronJob", "rd-music-refresh"]["spec"]["schedule"] == "0 4 * * *"
    assert (
        objs["CronJob", "rd-like-reconcile"]["spec"]["schedule"]
        == catalogue.get("like-reconcile").schedule
    )


def _checksums(secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    return {
        name: _container_template(obj)["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
        for (kind, name), obj in _by_key(_platform(EXTERNAL_MONGO, secrets=secrets)).items()
        if kind in ("Deployment", "CronJob")
    }


def _container_template(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(
        obj["spec"]["template"]
        if obj["kind"] == "Deployment"
        else obj["spec"]["jobTemplate"]["spec"]["template"]
    )


@pytest.mark.parametrize(
    ("secret", "users"),
    [
        (
            "rhime-spotify",
            {c.name for c in catalogue.COMPONENTS if catalogue.Secret.SPOTIFY in c.secrets},
        ),
        ("rhime-aws", {"user"}),
        # one key of a shared Secret rolls only the components that read that key
        ("rhime-auth/RHIME_ENCRYPTION_KEY", {"spotify", "recommendation-worker"}),
        ("rhime-auth/RHIME_ACCESS_TOKEN_SECRET", {"auth", "gateway"}),
        (
            "mongo-url",
            {c.name for c in catalogue.COMPONENTS if catalogue.Backing.MONGO in c.backing},
        ),
    ],
)
def test_checksum_changes_only_for_the_users_of_a_secret(secret: str, users: set[str]) -> None:
    before = _checksums(SECRETS)
    name, _, key = secret.partition("/")
    changed = {**SECRETS[name], key: "Y2hhbmdlZA=="} if key else {"url": "Y2hhbmdlZA=="}
    after = _checksums({**SECRETS, name: changed})
    assert {name.removeprefix("rd-") for name in before if before[name] != after[name]} == users


def test_a_config_change_rolls_only_its_component() -> None:
    before = _checksums(SECRETS)
    after = {
        name: _container_template(obj)["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
        for (kind, name), obj in _by_key(
            _platform({**EXTERNAL_MONGO, "s3": {"bucket": "b2"}})
        ).items()
        if kind in ("Deployment", "CronJob")
    }
    # the bucket is the user service's, and the web pages allow uploads to it
    assert {n for n in before if before[n] != after[n]} == {"rd-user", "rd-web"}


@pytest.mark.parametrize(
    ("raw", "reason", "needle"),
    [
        ({"components": {"nope": {}}}, "InvalidSpec", "nope"),
        ({"components": {"feed": {"replicas": -1}}}, "InvalidSpec", "replicas"),
        ({"image": {"pullPolicy": "Sometimes"}}, "InvalidSpec", "pullPolicy"),
        ({"schedules": {"feed": "* * * * *"}}, "InvalidSpec", "feed"),
        ({"schedules": {"music-refresh": "every day"}}, "InvalidSpec", "cron"),
        ({"gateway": {"service": {"type": "ExternalName"}}}, "InvalidSpec", "ExternalName"),
        (
            {
                "infrastructure": {
                    "mongo": {"external": {"secretRef": {"name": "m"}}, "managed": {}}
                }
            },
            "InvalidSpec",
            "not both",
        ),
        (
            {"components": {"feed": {"resources": {"limits": {"memory": "lots"}}}}},
            "InvalidSpec",
            "lots",
        ),
        (
            {"components": {"feed": {"env": [{"name": "RHIME_COMPONENT", "value": "x"}]}}},
            "InvalidSpec",
            "RHIME_COMPONENT",
        ),
    ],
)
def test_invalid_specs_are_rejected_with_a_reason(
    raw: dict[str, Any], reason: str, needle: str
) -> None:
    with pytest.raises(spec.SpecError) as info:
        spec.parse(raw, name="rd")
    assert info.value.reason == reason
    assert needle in info.value.message


def test_too_long_names_are_rejected() -> None:
    with pytest.raises(spec.SpecError) as info:
        spec.parse({}, name="a" * 50)
    assert info.value.reason == "InvalidName"


def test_minimal_spec_defaults() -> None:
    parsed = spec.parse({}, name="rd")
    assert parsed.image.reference == f"{spec.DEFAULT_REPOSITORY}:{spec.DEFAULT_TAG}"
    assert all(i.managed for i in parsed.infrastructure.values())
    assert parsed.secret_name(catalogue.Secret.AUTH) == "rhime-auth"
    assert parsed.replicas("feed") == 1
    assert not parsed.paused
    assert (
        config.public_url(parsed, instance="rd", namespace=NS) == "http://rd-gateway.prod.svc:8080"
    )


def _workloads(ready: bool, *, parsed: spec.Spec) -> list[status.Workload]:
    components, infra = status.expected_workloads(parsed)
    return [
        status.Workload(component=c, kind="Deployment", ready=1 if ready else 0, desired=1)
        for c in components
    ] + [status.Workload(component=i, kind="StatefulSet", ready=1, desired=1) for i in infra]


def _conditions(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in st["conditions"]}


def test_status_is_ready_only_when_every_workload_is() -> None:
    parsed = spec.parse({}, name="rd")
    st = status.render_status(
        generation=3, spec=parsed, workloads=_workloads(True, parsed=parsed), previous=[], now="t1"
    )
    conditions = _conditions(st)
    assert set(conditions) == set(status.CONDITION_TYPES)
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Reconciling"]["status"] == "False"
    assert st["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in st["conditions"])

    later = status.render_status(
        generation=3,
        spec=parsed,
        workloads=_workloads(False, parsed=parsed),
        previous=st["conditions"],
        now="t2",
    )
    conditions = _conditions(later)
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["lastTransitionTime"] == "t2"
    assert conditions["Stalled"]["lastTransitionTime"] == "t1"  # unchanged status keeps its time
    assert conditions["ComponentsAvailable"]["reason"] == "ReplicasUnavailable"
    assert later["componentsReady"].startswith("0/")
    assert status.transitions(st["conditions"], later["conditions"]) == [
        ("Ready", "False", "NotAvailable")
    ]


def test_status_of_an_invalid_spec_is_stalled() -> None:
    error = spec.SpecError("spec.components.x: unknown component")
    st = status.render_status(
        generation=2, spec=None, workloads=[], previous=[], now="t", error=error
    )
    conditions = _conditions(st)
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "InvalidSpec"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["InfrastructureReady"]["status"] == "Unknown"


def test_external_infrastructure_counts_as_ready() -> None:
    parsed = spec.parse(EXTERNAL_MONGO, name="rd")
    st = status.render_status(
        generation=1, spec=parsed, workloads=_workloads(True, parsed=parsed), previous=[], now="t"
    )
    assert _conditions(st)["InfrastructureReady"]["status"] == "True"
    assert {"name": "mongo", "ready": 0, "desired": 0, "mode": "external"} in st["infrastructure"]


def test_live_reload_runs_a_restartable_loop_on_a_writable_filesystem() -> None:
    objs = _by_key(_platform({"development": {"liveReload": True}}))
    container = _container(objs["Deployment", "rd-feed"])
    assert container["command"][:2] == ["sh", "-c"]
    assert "rhime serve feed" in container["command"][2]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert _container(objs["CronJob", "rd-music-refresh"])["command"] == [
        "rhime",
        "serve",
        "music-refresh",
    ]
    production = _container(_by_key(_platform())["Deployment", "rd-feed"])
    assert production["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_failed_apply_holds_ready_false_until_an_apply_succeeds() -> None:
    parsed = spec.parse({}, name="rd")
    ready = [
        status.Workload(component=c, kind="Deployment", ready=1, desired=1)
        for c in status.expected_workloads(parsed)[0]
    ] + [
        status.Workload(component=i, kind="StatefulSet", ready=1, desired=1)
        for i in status.expected_workloads(parsed)[1]
    ]
    ok = status.render_status(generation=1, spec=parsed, workloads=ready, previous=[], now="t0")
    assert _conditions(ok)["Ready"]["status"] == "True"

    failed = status.render_status(
        generation=1,
        spec=parsed,
        workloads=ready,
        previous=ok["conditions"],
        now="t1",
        apply_error="HTTP 500: boom",
    )
    conditions = _conditions(failed)
    assert conditions["Ready"] == {
        **conditions["Ready"],
        "status": "False",
        "reason": "ApplyFailed",
        "lastTransitionTime": "t1",
    }
    assert conditions["Reconciling"]["reason"] == "ApplyFailed"
    assert conditions["Reconciling"]["message"] == "HTTP 500: boom"
    assert conditions["Stalled"]["status"] == "False"
    assert "failed" in conditions["Stalled"]["message"]


def test_managed_infrastructure_takes_an_image_override_and_pull_policy() -> None:
    objs = _by_key(
        _platform(
            {
                "infrastructure": {
                    "nats": {
                        "managed": {
                            "image": "rhime.local/nats:2.10-alpine",
                            "imagePullPolicy": "Never",
                        }
                    }
                }
            }
        )
    )
    nats = _container(objs["StatefulSet", "rd-nats"])
    assert nats["image"] == "rhime.local/nats:2.10-alpine"
    assert nats["imagePullPolicy"] == "Never"
    redis = _container(objs["StatefulSet", "rd-redis"])
    assert redis["image"] == "redis:7.2-alpine"
    assert redis["imagePullPolicy"] == "IfNotPresent"
    with pytest.raises(spec.SpecError, match="imagePullPolicy"):
        spec.parse(
            {"infrastructure": {"redis": {"managed": {"imagePullPolicy": "Sometimes"}}}}, name="rd"
        )


def _pod(
    component: str,
    *,
    waiting: str,
    owner: str = "ReplicaSet",
    revision: str = "",
    last_exit: dict[str, Any] | None = None,
) -> dict[str, Any]:
    container = {"name": component, "state": {"waiting": {"reason": waiting, "message": "m"}}}
    if last_exit:
        container["lastState"] = {"terminated": last_exit}
    return {
        "metadata": {
            "name": f"rd-{component}-0",
            "labels": {names.LABEL_COMPONENT: component, "controller-revision-hash": revision},
            "ownerReferences": [{"kind": owner, "name": f"rd-{component}"}],
        },
        "status": {"containerStatuses": [container]},
    }


def test_a_crash_loop_names_why_the_container_last_stopped() -> None:
    problem = status.observe_pod(
        _pod("post", waiting="CrashLoopBackOff", last_exit={"reason": "OOMKilled", "exitCode": 137})
    )
    assert problem is not None
    assert problem.reason == "CrashLoopBackOff"
    assert problem.message == "post: m (last exit: OOMKilled, code 137)"
    assert (problem.pod, problem.owner) == ("rd-post-0", "ReplicaSet")


def test_a_stuck_rollout_behind_ready_pods_keeps_reconciling_and_says_why() -> None:
    parsed = spec.parse({}, name="rd")
    problem = status.observe_pod(_pod("post", waiting="ErrImageNeverPull"))
    assert problem is not None
    st = status.render_status(
        generation=1,
        spec=parsed,
        workloads=_workloads(True, parsed=parsed),
        previous=[],
        now="t",
        problems=[problem],
    )
    conditions = _conditions(st)
    assert conditions["Ready"]["status"] == "True"  # the old pods still serve
    assert conditions["Reconciling"]["status"] == "True"
    assert conditions["Reconciling"]["reason"] == "ErrImageNeverPull"
    assert "post: ErrImageNeverPull" in conditions["Reconciling"]["message"]

    evicted = status.observe_pod(
        {
            "metadata": {"name": "rd-post-1", "labels": {names.LABEL_COMPONENT: "post"}},
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory"},
        }
    )
    assert evicted is not None
    assert evicted.reason == "Evicted"
    replaced = status.render_status(
        generation=1,
        spec=parsed,
        workloads=_workloads(True, parsed=parsed),
        previous=[],
        now="t",
        problems=[evicted],
    )
    assert _conditions(replaced)["Reconciling"]["reason"] == "Reconciled"


def test_only_stuck_statefulset_pods_of_an_outdated_revision_are_stale() -> None:
    redis = status.Workload(
        component="redis", kind="StatefulSet", ready=0, desired=1, revision="v2"
    )
    problems = [
        status.observe_pod(_pod(c, waiting=w, owner=o, revision=r))
        for c, w, o, r in (
            ("redis", "ErrImageNeverPull", "StatefulSet", "v1"),  # stale
            ("redis", "CrashLoopBackOff", "StatefulSet", "v2"),  # the wanted revision
            ("post", "ErrImageNeverPull", "ReplicaSet", ""),  # Deployments roll back alone
        )
    ]
    stale = status.stale_pods([redis], [p for p in problems if p])
    assert [(p.component, p.revision) for p in stale] == [("redis", "v1")]


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ({}, "https://rhime-media.s3.amazonaws.com"),
        (
            {"s3": {"bucket": "pics", "region": "eu-west-1"}},
            "https://pics.s3.eu-west-1.amazonaws.com",
        ),
        ({"development": {"standIns": True}}, "http://localhost:9000"),
    ],
)
def test_web_pages_allow_uploads_to_the_image_store(raw: dict[str, Any], origin: str) -> None:
    objs = _by_key(_platform(raw))
    assert objs["ConfigMap", "rd-web-env"]["data"]["RHIME_UPLOAD_ORIGIN"] == origin
    assert "RHIME_UPLOAD_ORIGIN" not in objs["ConfigMap", "rd-feed-env"]["data"]


def test_serving_pods_drain_before_stopping_and_cron_runs_have_a_deadline() -> None:
    objs = _by_key(_platform())
    for c in catalogue.COMPONENTS:
        kind = "CronJob" if c.kind is catalogue.Kind.CRON else "Deployment"
        obj = objs[kind, f"rd-{c.name}"]
        pod = _container_template(obj)["spec"]
        container = _container(obj)
        if c.serves_traffic:
            pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert pod["terminationGracePeriodSeconds"] > pause + 10  # + the shutdown grace
        else:
            assert "lifecycle" not in container
        if c.kind is catalogue.Kind.CRON:
            assert obj["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_managed_redis_is_bounded_below_its_memory_limit_and_never_evicts() -> None:
    args = _container(_by_key(_platform())["StatefulSet", "rd-redis"])["args"]
    assert _flag(args, "--maxmemory-policy") == "noeviction"
    assert 0 < int(_flag(args, "--maxmemory")) < 256 * 2**20  # the default 256Mi limit
    bigger = _platform(
        {"infrastructure": {"redis": {"managed": {"resources": {"limits": {"memory": "1Gi"}}}}}}
    )
    args = _container(_by_key(bigger)["StatefulSet", "rd-redis"])["args"]
    assert 256 * 2**20 < int(_flag(args, "--maxmemory")) < 2**30


def test_the_streams_get_half_of_the_managed_nats_volume() -> None:
    big = {"infrastructure": {"nats": {"managed": {"storage": "10Gi"}}}}
    data = _by_key(_platform(big))["ConfigMap", "rd-feed-env"]["data"]
    assert data["RHIME_STREAM_STORAGE_BYTES"] == str(5 << 30)
    default = _by_key(_platform())["ConfigMap", "rd-feed-env"]["data"]
    assert default["RHIME_STREAM_STORAGE_BYTES"] == str(512 << 20)  # the kit's own default
    web = _by_key(_platform())["ConfigMap", "rd-web-env"]["data"]
    assert "RHIME_STREAM_STORAGE_BYTES" not in web  # no NATS


def _egress(policy: dict[str, Any]) -> set[tuple[str, str, int]]:
    """(peer kind, peer, port) for every egress rule: pods by component, ipBlocks by CIDR."""
    found: set[tuple[str, str, int]] = set()
    for rule in policy["spec"]["egress"]:
        for peer in rule["to"]:
            for port in rule["ports"]:
                if "namespaceSelector" in peer:
                    ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    found.add((f"dns/{port['protocol']}", ns, port["port"]))
                elif "podSelector" in peer:
                    labels = peer["podSelector"]["matchLabels"]
                    assert labels[names.LABEL_INSTANCE] == "rd"
                    found.add(("pod", labels[names.LABEL_COMPONENT], port["port"]))
                else:
                    found.add(("ip", peer["ipBlock"]["cidr"], port["port"]))
    return found


DNS = {("dns/UDP", "kube-system", 53), ("dns/TCP", "kube-system", 53)}
STORE_PORTS = {"mongo": 27017, "redis": 6379, "nats": 4222}


def test_egress_is_denied_by_default_and_each_component_reaches_only_what_it_needs() -> None:
    objs = _by_key(_platform())
    deny = objs["NetworkPolicy", "rd-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert deny["egress"] == []
    for c in catalogue.COMPONENTS:
        policy = objs["NetworkPolicy", f"rd-{c.name}"]
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        stores_used = {b.value for b in c.backing if b.value in STORE_PORTS}
        expected = DNS | {("pod", t, catalogue.get(t).port) for t in c.calls}
        expected |= {("pod", s, STORE_PORTS[s]) for s in stores_used}
        if c.name in ("spotify", "recommendation-worker", "user", "web"):
            expected.add(("ip", "0.0.0.0/0", 443))  # Spotify or S3
        assert _egress(policy) == expected, c.name
        if not c.serves_traffic:
            assert policy["spec"]["ingress"] == []
    gateway = _egress(objs["NetworkPolicy", "rd-gateway"])
    assert ("pod", "redis", 6379) in gateway
    assert ("pod", "mongo", 27017) not in gateway
    assert not any(kind == "ip" for kind, _, _ in gateway)
    assert ("pod", "user-graph-view", 8110) in _egress(objs["NetworkPolicy", "rd-feed"])


def test_the_internet_excludes_private_ranges_and_the_metadata_endpoint() -> None:
    objs = _by_key(_platform())
    (rule,) = [
        r for r in objs["NetworkPolicy", "rd-spotify"]["spec"]["egress"] if "ipBlock" in r["to"][0]
    ]
    block = rule["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        block["except"]
    )
    # a narrower internet keeps only the exceptions inside it (the API server insists)
    narrow = _by_key(
        _platform({"network": {"internet": {"cidr": "203.0.113.0/24", "except": ["10.0.0.0/8"]}}})
    )
    (rule,) = [
        r
        for r in narrow["NetworkPolicy", "rd-spotify"]["spec"]["egress"]
        if "ipBlock" in r["to"][0]
    ]
    assert rule["to"][0]["ipBlock"] == {"cidr": "203.0.113.0/24"}


def test_with_stand_ins_the_outside_services_are_their_pods_not_the_internet() -> None:
    objs = _by_key(_platform({"development": {"standIns": True}}))
    spotify = _egress(objs["NetworkPolicy", "rd-spotify"])
    assert ("pod", "fake-spotify", 8090) in spotify
    assert not any(kind == "ip" for kind, _, _ in spotify)
    assert ("pod", "s3", 9000) in _egress(objs["NetworkPolicy", "rd-web"])
    assert ("pod", "s3", 9000) in _egress(objs["NetworkPolicy", "rd-user"])
    assert not any(peer[0] == "pod" and peer[1] == "s3" for peer in spotify)


def test_external_stores_are_reached_on_the_networks_and_port_of_the_spec() -> None:
    objs = _by_key(
        _platform(
            {
                "infrastructure": {
                    "mongo": {
                        "external": {
                            "secretRef": {"name": "mongo-url"},
                            "cidrs": ["10.20.0.0/16", "10.30.0.0/16"],
                            "port": 27018,
                        }
                    },
                    "redis": {"external": {"secretRef": {"name": "mongo-url"}}},
                }
            }
        )
    )
    feed = _egress(objs["NetworkPolicy", "rd-feed"])
    assert {("ip", "10.20.0.0/16", 27018), ("ip", "10.30.0.0/16", 27018)} <= feed
    assert ("ip", "0.0.0.0/0", 6379) in feed  # no networks given: that port anywhere
    assert ("pod", "mongo", 27017) not in feed
    assert ("pod", "nats", 4222) in feed


def test_egress_policies_can_be_turned_off() -> None:
    objs = _by_key(_platform({"network": {"egress": False}}))
    assert objs["NetworkPolicy", "rd-default-deny"]["spec"]["policyTypes"] == ["Ingress"]
    policies = [o for o in objs.values() if o["kind"] == "NetworkPolicy"]
    assert all("egress" not in p["spec"] for p in policies)
    assert ("NetworkPolicy", "rd-like-updater") not in objs  # a worker needs no ingress rule


def test_the_dns_peer_follows_the_spec() -> None:
    raw = {"network": {"dns": {"namespace": "dns", "podLabels": {"app": "coredns"}}}}
    (rule, *_) = _by_key(_platform(raw))["NetworkPolicy", "rd-auth"]["spec"]["egress"]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "dns"}
    assert peer["podSelector"]["matchLabels"] == {"app": "coredns"}


@pytest.mark.parametrize(
    "raw",
    [
        {"network": {"egress": "yes"}},
        {"network": {"internet": {"cidr": "not-a-network"}}},
        {"network": {"internet": {"except": ["10.0.0.1/8"]}}},
        {"infrastructure": {"mongo": {"external": {"secretRef": {"name": "m"}, "port": 0}}}},
        {"infrastructure": {"mongo": {"external": {"secretRef": {"name": "m"}, "cidrs": "x"}}}},
    ],
)
def test_bad_network_settings_are_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(spec.SpecError):
        spec.parse(raw, name="rd")


def test_an_external_store_can_give_each_component_its_own_url() -> None:
    raw = {
        "infrastructure": {
            "mongo": {"external": {"secretRef": {"name": "mongo-url"}, "perComponent": True}}
        }
    }
    secrets = {
        **SECRETS,
        "mongo-url": {f"{c.name}-url": "eA==" for c in catalogue.COMPONENTS},
    }
    objs = _by_key(_platform(raw, secrets=secrets))
    for c in catalogue.COMPONENTS:
        workload = objs[
            "CronJob" if c.kind is catalogue.Kind.CRON else "Deployment", f"rd-{c.name}"
        ]
        env = {e["name"]: e for e in _container(workload).get("env", [])}
        if catalogue.Backing.MONGO in c.backing:
            assert env["RHIME_MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "mongo-url",
                "key": f"{c.name}-url",
            }
        else:
            assert "RHIME_MONGO_URL" not in env
    parsed = spec.parse(raw, name="rd")
    # the reconciler insists on exactly these keys
    assert config.external_keys(parsed) == {
        ("mongo-url", f"{c.name}-url")
        for c in catalogue.COMPONENTS
        if catalogue.Backing.MONGO in c.backing
    }
    assert config.external_keys(spec.parse(EXTERNAL_MONGO, name="rd")) == {("mongo-url", "url")}
    # a component's pods roll when its own key changes, not another's
    changed = {**secrets, "mongo-url": {**secrets["mongo-url"], "feed-url": "eQ=="}}
    before = _by_key(_platform(raw, secrets=secrets))
    after = _by_key(_platform(raw, secrets=changed))

    def checksum(objs: dict[tuple[str, str], dict[str, Any]], name: str) -> str:
        meta = objs["Deployment", f"rd-{name}"]["spec"]["template"]["metadata"]
        return str(meta["annotations"][names.CHECKSUM_ANNOTATION])

    assert checksum(before, "feed") != checksum(after, "feed")
    assert checksum(before, "post") == checksum(after, "post")
