"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

No kubelet runs, so no pod ever starts; everything else is the real thing: RBAC,
service-account tokens, admission, validation, server-side apply, garbage collection and
the workload controllers. The operator's tests and `rhime control-plane up` use it.

Binaries come from `scripts/bootstrap.sh --kube` (built from the Go module proxy).
`rhime.runtime.cluster` reuses it with the API server on a bridge address and nodes
authorized, to run pods.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rhime.runtime import pki
from rhime.runtime.servers import REPO, Server, ServerError, free_port

SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
COMMANDS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def binary(name: str) -> str:
    """Path of a control-plane binary: RHIME_KUBE_BIN_DIR, else the bootstrap's build."""
    folder = Path(os.environ.get("RHIME_KUBE_BIN_DIR") or REPO / ".rhime" / "bin")
    path = folder / name
    if not path.is_file():
        raise ServerError(f"{path} not found; run scripts/bootstrap.sh --kube to build it")
    return str(path)


def available() -> bool:
    try:
        for name in COMMANDS:
            binary(name)
    except ServerError:
        return False
    return True


def kubeconfig(
    *,
    server: str,
    ca: Path,
    user: str,
    token: str | None = None,
    client: pki.Pair | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig for one user, authenticated by a bearer token or a client certificate."""
    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if client is not None:
        credentials |= {"client-certificate": str(client.cert), "client-key": str(client.key)}
    context: dict[str, str] = {"cluster": "rhime-local", "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": user,
        "clusters": [
            {"name": "rhime-local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
    }


def merge_flags(command: Sequence[str], extra: Sequence[str]) -> list[str]:
    """`command` with each `--flag=value` of `extra` replacing the same flag, or appended."""
    names = {flag.partition("=")[0] for flag in extra}
    kept = [arg for arg in command if arg.partition("=")[0] not in names]
    return [*kept, *extra]


def _https_ready(url: str, context: ssl.SSLContext) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return check


@dataclasses.dataclass(frozen=True)
class _Identities:
    """What the API server and the controller manager authenticate with."""

    serving: pki.Pair
    admin: pki.Pair
    kubelet_client: pki.Pair
    accounts: pki.Pair
    manager_config: Path


def _serving_hosts(*, address: str, hosts: Sequence[str]) -> list[str]:
    """Names and addresses on the API server's certificate: where it binds, the extra
    `hosts`, loopback and the in-cluster names of the kubernetes Service."""
    return list(
        dict.fromkeys(
            [
                address,
                *hosts,
                "127.0.0.1",
                "10.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
        )
    )


def _etcd_command(*, directory: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        binary("etcd"),
        "--name=rhime",
        f"--data-dir={directory / 'etcd'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=rhime={peer_url}",
        "--unsafe-no-fsync",  # throwaway data: durability is not the point here
        "--log-level=warn",
    ]


def _apiserver_command(
    *,
    directory: Path,
    address: str,
    port: int,
    etcd_url: str,
    ca: Path,
    identities: _Identities,
) -> list[str]:
    return [
        binary("kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        # The kubernetes Service's endpoints would point at loopback: keep them unmanaged.
        "--endpoint-reconciler-type=none",
        f"--cert-dir={directory / 'pki'}",
        f"--tls-cert-file={identities.serving.cert}",
        f"--tls-private-key-file={identities.serving.key}",
        f"--client-ca-file={ca}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={identities.accounts.cert}",
        f"--service-account-signing-key-file={identities.accounts.key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={identities.kubelet_client.cert}",
        f"--kubelet-client-key={identities.kubelet_client.key}",
    ]


def _manager_command(*, port: int, ca: Path, identities: _Identities) -> list[str]:
    config = identities.manager_config
    return [
        binary("kube-controller-manager"),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--service-account-private-key-file={identities.accounts.key}",
        f"--root-ca-file={ca}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--use-service-account-credentials=true",
        # Fast garbage collection and workload sync for a test-sized cluster.
        "--concurrent-gc-syncs=10",
    ]


@dataclasses.dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager sharing one directory.

    `address` is where the API server binds and what it advertises (loopback unless a
    cluster's nodes must reach it), `hosts` are extra names and addresses for its serving
    certificate, and `flags` adds or replaces flags per server name."""

    directory: Path
    server: str = ""
    address: str = "127.0.0.1"
    hosts: Sequence[str] = ()
    flags: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    admin_kubeconfig: Path = dataclasses.field(init=False)
    servers: list[Server] = dataclasses.field(default_factory=list)
    _authority: pki.Authority | None = None
    _admin: pki.Pair | None = None

    def __post_init__(self) -> None:
        self.admin_kubeconfig = self.directory / "admin.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.directory / "pki" / "ca.crt"

    @property
    def authority(self) -> pki.Authority:
        """The cluster's certificate authority (once started), to issue more identities."""
        if self._authority is None:
            raise ServerError("the control plane has not been started")
        return self._authority

    def client_kubeconfig(
        self, name: str, *, user: str, group: str | None = None, path: Path | None = None
    ) -> Path:
        """A kubeconfig at `path` (default: DIRECTORY/NAME.kubeconfig) for a new client
        certificate naming `user` (and `group`)."""
        pair = self.authority.issue(name, common_name=user, organization=group)
        target = path or self.directory / f"{name}.kubeconfig"
        self._write(target, user=user, client=pair)
        return target

    def _prepare(self) -> None:
        authority = pki.Authority.create(self.directory / "pki")
        self._authority = authority
        api_port, etcd_port, peer_port, cm_port = (free_port() for _ in range(4))
        self.server = f"https://{self.address}:{api_port}"
        identities = self._issue(authority)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = _etcd_command(
            directory=self.directory, client_url=etcd_url, peer_url=f"http://127.0.0.1:{peer_port}"
        )
        apiserver = _apiserver_command(
            directory=self.directory,
            address=self.address,
            port=api_port,
            etcd_url=etcd_url,
            ca=authority.cert_path,
            identities=identities,
        )
        manager = _manager_command(port=cm_port, ca=authority.cert_path, identities=identities)
        self.servers = self._servers(
            admin=identities.admin,
            etcd_url=etcd_url,
            manager_url=f"https://127.0.0.1:{cm_port}",
            etcd=merge_flags(etcd, self.flags.get("etcd", ())),
            apiserver=merge_flags(apiserver, self.flags.get("kube-apiserver", ())),
            manager=merge_flags(manager, self.flags.get("kube-controller-manager", ())),
        )

    def _issue(self, authority: pki.Authority) -> _Identities:
        """Every certificate and key the servers use, and the admin's and the controller
        manager's kubeconfigs (which name `self.server`, so it is known by now)."""
        serving = authority.issue(
            "apiserver",
            common_name="kube-apiserver",
            server=True,
            hosts=_serving_hosts(address=self.address, hosts=self.hosts),
        )
        self._admin = authority.issue(
            "admin", common_name="rhime-admin", organization="system:masters"
        )
        manager = authority.issue(
            "controller-manager", common_name="system:kube-controller-manager"
        )
        # How the API server authenticates to kubelets (logs, exec); unused without nodes.
        kubelet_client = authority.issue(
            "apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client"
        )
        accounts = pki.signing_key(self.directory / "pki", "service-accounts")
        self._write(self.admin_kubeconfig, user="rhime-admin", client=self._admin)
        manager_config = self.directory / "controller-manager.kubeconfig"
        self._write(manager_config, user="system:kube-controller-manager", client=manager)
        return _Identities(
            serving=serving,
            admin=self._admin,
            kubelet_client=kubelet_client,
            accounts=accounts,
            manager_config=manager_config,
        )

    def _servers(
        self,
        *,
        admin: pki.Pair,
        etcd_url: str,
        manager_url: str,
        etcd: list[str],
        apiserver: list[str],
        manager: list[str],
    ) -> list[Server]:
        """The three servers in start order, each with how to tell it is ready."""
        context = ssl.create_default_context(cafile=str(self.authority.cert_path))
        context.load_cert_chain(str(admin.cert), str(admin.key))
        # The controller manager serves /healthz with a self-signed certificate.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        logs = self.directory / "logs"
        return [
            Server("etcd", etcd_url, etcd, _etcd_ready(etcd_url), logs / "etcd.log"),
            Server(
                "kube-apiserver",
                self.server,
                apiserver,
                _https_ready(f"{self.server}/readyz", context),
                logs / "kube-apiserver.log",
            ),
            Server(
                "kube-controller-manager",
                manager_url,
                manager,
                _https_ready(f"{manager_url}/healthz", insecure),
                logs / "kube-controller-manager.log",
            ),
        ]

    def _write(self, path: Path, *, user: str, client: pki.Pair) -> None:
        config = kubeconfig(server=self.server, ca=self.ca, user=user, client=client)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def start(
        self, *, timeout: float = 60.0, on_ready: Callable[[str], None] | None = None
    ) -> None:
        """Start the servers in order, each once the one before it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prepare()
        deadline = time.monotonic() + timeout
        for server in self.servers:
            server.spawn()
            while not server.ready():
                if not server.alive():
                    self.stop()
                    raise ServerError(f"{server.name} exited at start; see {server.log}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"{server.name} not ready after {timeout:.0f}s")
                time.sleep(0.05)
            if on_ready:
                on_ready(server.name)

    def stop(self) -> None:
        # kube-apiserver can ignore SIGTERM for a minute while it drains: it is killed sooner.
        for server in reversed(self.servers):
            server.stop(timeout=5.0)

    def restart(self, name: str, *, timeout: float = 60.0) -> None:
        """Stop one server and start it again (for fault tests), waiting until it answers."""
        (server,) = (s for s in self.servers if s.name == name)
        server.stop(timeout=5.0)
        server.spawn()
        deadline = time.monotonic() + timeout
        while not server.ready():
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not come back; see {server.log}")
            time.sleep(0.05)

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """One request as the cluster admin (for set-up and checks, not for the operator)."""
        assert self._authority is not None
        assert self._admin is not None
        context = ssl.create_default_context(cafile=str(self._authority.cert_path))
        context.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            text = response.read()
        return json.loads(text) if text else None

    def service_account_token(self, *, namespace: str, name: str, seconds: int = 3600) -> str:
        """A bearer token for a ServiceAccount, issued by the API server (TokenRequest)."""
        review = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        return str(review["status"]["token"])

    def write_kubeconfig(
        self, path: Path, *, user: str, token: str, namespace: str | None = None
    ) -> Path:
        """A kubeconfig that authenticates with `token`, as a pod's ServiceAccount would."""
        config = kubeconfig(
            server=self.server, ca=self.ca, user=user, token=token, namespace=namespace
        )
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path


def _etcd_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    return check


def up(*, data: str) -> int:
    """`rhime control-plane up`: a control plane with Rhime's CRD until Ctrl-C."""
    import shutil
    import signal

    directory = Path(data).resolve()
    shutil.rmtree(directory, ignore_errors=True)  # new certificates, new cluster: start clean
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    plane = ControlPlane(directory)
    try:
        plane.start(on_ready=lambda name: print(f"{name}: ready", flush=True))
    except ServerError as exc:
        print(exc, flush=True)
        return 1
    try:
        crd = yaml.safe_load((REPO / "crds" / "rhimedeployments.rhime.dev.yaml").read_text())
        plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        kubectl = binary("kubectl")
        print(
            f"\nexport KUBECONFIG={plane.admin_kubeconfig}\n\n"
            "The API server, etcd and the controllers run; no kubelet does, so pods stay "
            "Pending.\nTry:\n"
            f"  {kubectl} create namespace rhime\n"
            f"  {kubectl} -n rhime apply -f examples/dev-secrets.yaml -f examples/minimal.yaml\n"
            "  .venv/bin/kopf run --standalone --all-namespaces -m rhime_operator.handlers\n"
            f"  {kubectl} -n rhime get rd,deployments,statefulsets\n"
            f"Logs: {directory / 'logs'}   Ctrl-C stops it.",
            flush=True,
        )
        while not stopping and all(s.alive() for s in plane.servers):
            time.sleep(0.5)
        for server in plane.servers:
            if not server.alive():
                print(f"{server.name} exited; see {server.log}", flush=True)
                return 1
        return 0
    finally:
        plane.stop()
