"""spec.development.standIns: the fake Spotify and the S3 stand-in rendered into the cluster,
the components pointed at them, and nothing of it without the flag."""

from __future__ import annotations

import base64
import contextlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
from botocore.config import Config
from kube import RD, Kube, rd, until

from rhime import catalogue
from rhime.fakespotify.app import FakeSpotifySettings
from rhime.runtime import servers
from rhime_operator import config, names, network, render, spec, stores

NS = "prod"
SECRETS = {
    "rhime-auth": {"RHIME_ACCESS_TOKEN_SECRET": "YQ=="},
    "rhime-spotify": {
        "RHIME_SPOTIFY_CLIENT_ID": base64.b64encode(b"dev-client").decode(),
        "RHIME_SPOTIFY_CLIENT_SECRET": base64.b64encode(b"dev-secret").decode(),
    },
    "rhime-aws": {"AWS_ACCESS_KEY_ID": "Yw=="},
}
STAND_INS = {"development": {"standIns": True}}
URL_KEYS = (
    "RHIME_SPOTIFY_API_URL",
    "RHIME_SPOTIFY_ACCOUNTS_URL",
    "RHIME_SPOTIFY_PUBLIC_ACCOUNTS_URL",
    "RHIME_S3_ENDPOINT_URL",
)


def _platform(raw: dict[str, Any], *, secrets: Any = None) -> list[dict[str, Any]]:
    parsed = spec.parse(raw, name="rd")
    held = {
        **(secrets or SECRETS),
        **{stores.secret_name(instance="rd"): {stores.SEED_KEY: "c2VlZA=="}},
    }
    return render.render_platform(parsed, instance="rd", namespace=NS, secrets=held)


def _by_key(objs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {render.key(o): o for o in objs}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _service_url(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    return f"http://{meta['name']}.{meta['namespace']}.svc:{service['spec']['ports'][0]['port']}"


def _settings_env_names(component: catalogue.Component) -> set[str]:
    _, settings_type = component.load()
    prefix = settings_type.model_config.get("env_prefix", "")
    return {(prefix + field).upper() for field in settings_type.model_fields}


@pytest.mark.parametrize(
    "raw",
    [{}, {"development": {"liveReload": True}}, {"development": {"standIns": False}}],
)
def test_without_the_flag_nothing_of_the_stand_ins_is_rendered(raw: dict[str, Any]) -> None:
    objs = _platform(raw)
    parts = {s.value for s in config.StandIn}
    for obj in objs:
        assert obj["metadata"]["labels"][names.LABEL_COMPONENT] not in parts, render.key(obj)
        assert obj["metadata"]["name"] not in {f"rd-{p}" for p in parts}
        for key in URL_KEYS:
            assert key not in obj.get("data", {}), render.key(obj)
    with_flag = {render.key(o) for o in _platform({**raw, **STAND_INS})}
    assert with_flag - {render.key(o) for o in objs} == {
        (kind, f"rd-{part}")
        for part in parts
        for kind in ("Deployment", "Service", "NetworkPolicy")
    }


def test_each_stand_in_is_a_deployment_of_the_platform_image_behind_a_service() -> None:
    parsed = spec.parse(STAND_INS, name="rd")
    objs = _by_key(_platform(STAND_INS))
    for standin in config.StandIn:
        name = f"rd-{standin.value}"
        deployment, service = objs["Deployment", name], objs["Service", name]
        template = deployment["spec"]["template"]
        container = _container(deployment)
        assert container["image"] == parsed.image.reference
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert service["spec"]["type"] == "ClusterIP"
        # the Service reaches the pods and the named port
        assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        (port,) = service["spec"]["ports"]
        (container_port,) = container["ports"]
        assert port["targetPort"] == container_port["name"]
        assert port["port"] == container_port["containerPort"] == config.STANDIN_PORTS[standin]
        assert str(port["port"]) in container["command"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == container_port["name"]
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        assert template["spec"]["automountServiceAccountToken"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_stand_ins_run_what_rhime_up_runs_for_spotify_and_s3(tmp_path: Path) -> None:
    objs = _by_key(_platform(STAND_INS))
    spotify = servers.spotify(tmp_path, tmp_path, 1).command or []
    s3 = servers.s3(tmp_path, tmp_path, 1).command or []
    fake = _container(objs["Deployment", "rd-fake-spotify"])["command"]
    moto = _container(objs["Deployment", "rd-s3"])["command"]
    assert fake[0] == "uvicorn"
    assert fake[1:3] == spotify[spotify.index("--factory") : spotify.index("--factory") + 2]
    assert moto[0] == Path(s3[0]).name == "moto_server"


def test_the_components_are_pointed_at_the_stand_ins_services() -> None:
    objs = _by_key(_platform(STAND_INS))
    fake = _service_url(objs["Service", "rd-fake-spotify"])
    s3 = _service_url(objs["Service", "rd-s3"])
    port = config.STANDIN_PORTS[config.StandIn.SPOTIFY]
    for c in catalogue.COMPONENTS:
        data = objs["ConfigMap", f"rd-{c.name}-env"]["data"]
        wired = {key: data[key] for key in URL_KEYS if key in data}
        expected: dict[str, str] = {}
        if catalogue.Backing.SPOTIFY in c.backing:
            expected |= {
                "RHIME_SPOTIFY_API_URL": fake,
                "RHIME_SPOTIFY_ACCOUNTS_URL": fake,
                "RHIME_SPOTIFY_PUBLIC_ACCOUNTS_URL": f"http://localhost:{port}",
            }
        if catalogue.Backing.S3 in c.backing:
            expected["RHIME_S3_ENDPOINT_URL"] = s3
        assert wired == expected, c.name
        # every variable set is one the component's settings read
        assert set(wired) <= _settings_env_names(c), c.name
    wired_components = {
        c.name
        for c in catalogue.COMPONENTS
        if set(URL_KEYS) & set(objs["ConfigMap", f"rd-{c.name}-env"]["data"])
    }
    assert wired_components == {"spotify", "recommendation-worker", "user"}


def test_the_fake_spotify_accepts_the_credentials_of_the_spotify_secret() -> None:
    objs = _by_key(_platform({**STAND_INS, "secrets": {"spotify": "my-spotify"}}))
    env = {e["name"]: e for e in _container(objs["Deployment", "rd-fake-spotify"])["env"]}
    client_id, client_secret = catalogue.SECRET_KEYS[catalogue.Secret.SPOTIFY]
    assert env["RHIME_FAKE_SPOTIFY_CLIENT_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-spotify",
        "key": client_id,
    }
    assert env["RHIME_FAKE_SPOTIFY_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-spotify",
        "key": client_secret,
    }
    assert env["RHIME_FAKE_SPOTIFY_PUBLIC_URL"]["value"] == "http://localhost:8090"
    fields = {f"RHIME_FAKE_SPOTIFY_{f}".upper() for f in FakeSpotifySettings.model_fields}
    assert set(env) <= fields
    spotify_refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in _container(objs["Deployment", "rd-spotify"])["env"]
        if e["name"] in (client_id, client_secret)
    }
    assert spotify_refs == {"my-spotify"}


def test_network_policies_admit_only_the_stand_ins_clients() -> None:
    objs = _by_key(_platform(STAND_INS))
    expected = {"fake-spotify": {"spotify", "recommendation-worker"}, "s3": {"user", "web"}}
    for standin in config.StandIn:
        policy = objs["NetworkPolicy", f"rd-{standin.value}"]["spec"]
        assert policy["podSelector"]["matchLabels"] == names.selector_labels(
            instance="rd", component=standin.value
        )
        (rule,) = policy["ingress"]
        allowed = {
            peer["podSelector"]["matchLabels"][names.LABEL_COMPONENT] for peer in rule["from"]
        }
        assert allowed == expected[standin.value] == set(network.standin_clients(standin))
        assert rule["ports"] == [{"protocol": "TCP", "port": config.STANDIN_PORTS[standin]}]


def test_stand_in_names_do_not_collide_with_components_or_infrastructure() -> None:
    taken = set(catalogue.BY_NAME) | {i.value for i in spec.Infra} | {"default-deny"}
    assert not {s.value for s in config.StandIn} & taken


def _checksums(raw: dict[str, Any], secrets: Any = None) -> dict[str, str]:
    return {
        name: obj["spec"]["template"]["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
        for (kind, name), obj in _by_key(_platform(raw, secrets=secrets)).items()
        if kind == "Deployment"
    }


def test_turning_stand_ins_on_rolls_only_the_components_pointed_at_them() -> None:
    before, after = _checksums({}), _checksums(STAND_INS)
    changed = {n for n in before if before[n] != after[n]}
    # web: its pages now allow uploads to the S3 stand-in rather than the bucket's endpoint
    assert changed == {"rd-spotify", "rd-recommendation-worker", "rd-user", "rd-web"}


def test_a_new_spotify_secret_restarts_the_fake_spotify_and_not_moto() -> None:
    rotated = {**SECRETS, "rhime-spotify": {"RHIME_SPOTIFY_CLIENT_SECRET": "bmV3"}}
    before, after = _checksums(STAND_INS), _checksums(STAND_INS, secrets=rotated)
    assert before["rd-fake-spotify"] != after["rd-fake-spotify"]
    assert before["rd-s3"] == after["rd-s3"]


def test_live_reload_makes_the_stand_ins_writable_for_tilts_sync() -> None:
    objs = _by_key(_platform({"development": {"standIns": True, "liveReload": True}}))
    for standin in config.StandIn:
        container = _container(objs["Deployment", f"rd-{standin.value}"])
        assert container["securityContext"]["readOnlyRootFilesystem"] is False


def test_an_invalid_flag_is_rejected() -> None:
    with pytest.raises(spec.SpecError, match="standIns"):
        spec.parse({"development": {"standIns": "yes"}}, name="rd")


async def test_the_operator_applies_the_stand_ins_and_prunes_them_when_switched_off(
    kube: Kube, operator: Any
) -> None:
    wanted = {
        (kind, f"demo-{standin.value}")
        for standin in config.StandIn
        for kind in ("Deployment", "Service", "NetworkPolicy")
    }

    async def present() -> bool:
        return wanted <= set(await kube.children("demo"))

    async def gone() -> bool:
        return not wanted & set(await kube.children("demo"))

    await kube.create_secrets()
    body = await kube.create(RD, rd("demo", STAND_INS))
    await until(present)
    children = await kube.children("demo")
    for key in wanted:
        (owner,) = children[key]["metadata"]["ownerReferences"]
        assert owner["uid"] == body["metadata"]["uid"]
    env = children["ConfigMap", "demo-spotify-env"]["data"]
    assert env["RHIME_SPOTIFY_API_URL"].startswith("http://demo-fake-spotify.")

    await kube.patch(RD, "demo", {"spec": {"development": {"standIns": False}}})
    await until(gone)
    env = (await kube.children("demo"))["ConfigMap", "demo-spotify-env"]["data"]
    assert "RHIME_SPOTIFY_API_URL" not in env


# ---- the rendered containers, run on loopback -------------------------------------------


@contextlib.contextmanager
def _running(
    deployment: dict[str, Any], *, secrets: dict[str, dict[str, str]], tmp_path: Path
) -> Iterator[str]:
    """The container's command and env (Secret refs resolved, a free port) as a process;
    yields its base URL once the readiness probe's path answers 200."""
    container = _container(deployment)
    port = servers.free_port()
    rendered = str(container["ports"][0]["containerPort"])
    command = [str(port) if part == rendered else part for part in container["command"]]
    command[0] = str(Path(sys.executable).parent / command[0])
    env = {}
    for item in container["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        value = item["value"] if ref is None else secrets[ref["name"]][ref["key"]]
        env[item["name"]] = base64.b64decode(value).decode() if ref else value
    url = f"http://127.0.0.1:{port}"
    probe = f"{url}{container['readinessProbe']['httpGet']['path']}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(probe, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    server = servers.Server(
        container["name"], url, command, ready, tmp_path / f"{container['name']}.log", env=env
    )
    server.spawn()
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert server.alive(), (tmp_path / f"{container['name']}.log").read_text()
            assert time.monotonic() < deadline, "not ready in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        server.stop()


def test_the_rendered_fake_spotify_starts_and_knows_the_app(tmp_path: Path) -> None:
    objs = _by_key(_platform(STAND_INS))
    with _running(objs["Deployment", "rd-fake-spotify"], secrets=SECRETS, tmp_path=tmp_path) as url:
        query = urlencode(
            {
                "client_id": "dev-client",
                "response_type": "code",
                "redirect_uri": "http://localhost:8080/api/spotify/callback",
                "state": "s",
            }
        )
        request = urllib.request.Request(f"{url}/authorize?{query}")
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(request, timeout=5)
        assert info.value.code == 302
        location = info.value.headers["location"]
        assert location.startswith("http://localhost:8080/api/spotify/callback?")
        assert parse_qs(urlsplit(location).query)["code"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_rendered_s3_serves_path_style_buckets_at_its_cluster_address(
    tmp_path: Path,
) -> None:
    objs = _by_key(_platform(STAND_INS))
    address = urlsplit(_service_url(objs["Service", "rd-s3"])).netloc
    with _running(objs["Deployment", "rd-s3"], secrets=SECRETS, tmp_path=tmp_path) as url:
        s3 = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="dev",
            aws_secret_access_key="dev",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket="rhime-media")
        s3.put_object(Bucket="rhime-media", Key="a.png", Body=b"png")
        # what the user component's requests carry as Host inside the cluster
        request = urllib.request.Request(
            f"{url}/rhime-media?list-type=2", headers={"Host": address}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"<Key>a.png</Key>" in response.read()
