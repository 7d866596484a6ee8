"""A real single-node Kubernetes that runs pods, without Docker and without a registry.

`Cluster(directory).up()` starts, as plain processes of this one with their files under
`directory` (wiped first: new certificates, new cluster):

- a bridge `cni0` with 10.244.0.1/24 (pods get 10.244.0.2-254 through the CNI `bridge` and
  `host-local` plugins) and a route for the Service range 10.0.0.0/24 onto it;
- containerd with runc; its pod sandbox image is `images.pause()`, imported, never pulled;
- the control plane of `rhime.runtime.controlplane` with the API server on 10.244.0.1 (pods
  reach it as `kubernetes.default.svc`) and the Node authorizer;
- kube-scheduler, a kubelet registering node `rhime`, kube-proxy in iptables mode;
- CoreDNS answering `cluster.local` on 10.244.0.1 behind the `kube-dns` Service (10.0.0.10),
  NXDOMAIN for every other name: nothing is forwarded.

Nothing listens beyond loopback and 10.244.0.1. A filter chain (RHIME-CLUSTER) drops what
would be forwarded between the bridge and another interface, and containerd's only registry
is a closed port on loopback: no packet from a pod, no DNS query and no pull leaves the
machine. Images come from `import_image()` (docker-save tarballs, `rhime.runtime.images`);
workloads use `imagePullPolicy: Never` (or IfNotPresent with an imported tag).

It needs root, cgroups, iptables and nftables (`iptables-nft`); binaries come from
`scripts/bootstrap.sh --cluster`. One cluster per host (the bridge's name is fixed).

`rhime cluster up` runs in the foreground until Ctrl-C or SIGTERM, then tears down. Before it
changes anything on the host it writes DIRECTORY/cluster.json with what it found (sysctls,
nftables tables, host folders, cgroups) and then each process it starts. `rhime cluster
down`, from another shell, stops a running `up`; after a crashed one (or a failed step) it
restores the host from that record: containers and shims killed, mounts under DIRECTORY
unmounted, `kube-proxy --cleanup` run and every KUBE-* and RHIME-* chain removed (and the
nftables tables iptables-nft created, once empty), the bridge and route deleted, the sysctls
the kubelet and the bridge plugin set (kernel.panic, vm.overcommit_memory, ip_forward, ...)
put back, the kubelet's cgroups and what it left in host folders removed. It is idempotent,
and `up` runs it first when it finds a crashed run's record. `rhime cluster status` reports.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rhime.runtime import containerdconfig, images, nodeaccess
from rhime.runtime.controlplane import SERVICE_CIDR, ControlPlane, binary
from rhime.runtime.kubeletconfig import kubelet_configuration
from rhime.runtime.servers import REPO, Server, ServerError, free_port

BRIDGE = "cni0"
GATEWAY = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
DNS_IP = "10.0.0.10"
NODE = "rhime"
CHAIN = "RHIME-CLUSTER"
COMMANDS = (
    "kubelet",
    "kube-scheduler",
    "kube-proxy",
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "runc",
    "coredns",
    "rhime-pause",
    "rhime-hello",
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
)
# Host settings the kubelet (its kernel defaults), the bridge plugin (forwarding) or
# kube-proxy may change: recorded at `up`, restored by `down`.
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
# Host folders the node's programs write to whatever they are told: the kubelet's links to
# container logs and its device-plugin socket, libcni's result cache. `down` removes what the
# cluster left there, and each folder if `up` found it absent and it is empty again.
HOST_PATHS = ("/var/log/containers", "/var/lib/kubelet", "/var/lib/cni")
_CGROUPS = Path("/sys/fs/cgroup")
# The kubelet's and kube-proxy's chains, and ours. (The CNI plugins here make none: no
# masquerading, no port maps.) `up` refuses to start while other KUBE-* chains exist.
_CHAIN_PREFIXES = ("KUBE-", "RHIME-")
_MNT_DETACH = 2
_NETWORK = "rhime"  # the CNI network's name
_NO_REGISTRY = "127.0.0.1:9"  # where containerd would pull from: nothing listens there


class ClusterError(ServerError):
    pass


def available() -> bool:
    try:
        for name in COMMANDS:
            binary(name)
    except ServerError:
        return False
    return True


def _run(*args: str, check: bool = True) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"{shlex.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory`, deepest first (octal escapes decoded)."""
    prefix = str(directory)
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _unmount_all(directory: Path) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    for _ in range(5):
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)
    if mounts_under(directory):
        raise ClusterError(f"could not unmount: {', '.join(mounts_under(directory))}")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is not alive
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return status != "Z"


def _end(pids: list[int], *, grace: float) -> None:
    """SIGTERM, then SIGKILL whatever is left after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _cgroup_roots() -> list[Path]:
    """The mounted cgroup hierarchies (one folder per v1 controller, and the v2 tree)."""
    roots = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] in ("cgroup", "cgroup2") and Path(fields[1]).is_relative_to(_CGROUPS):
            roots.append(Path(fields[1]))
    return roots


def _iptables_chains(tool: str) -> dict[str, list[str]]:
    """Chains per table whose name is one of ours (KUBE-, RHIME-)."""
    if not shutil.which(f"{tool}-save"):
        return {}
    chains: dict[str, list[str]] = {}
    table = ""
    for line in _run(f"{tool}-save", check=False).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and line[1:].startswith(_CHAIN_PREFIXES):
            chains.setdefault(table, []).append(line[1:].split()[0])
    return chains


def _sweep_iptables() -> None:
    """Delete every KUBE-* and RHIME-* chain and the rules jumping to them."""
    for tool in ("iptables", "ip6tables"):
        ours = _iptables_chains(tool)
        if not ours:
            continue
        table = ""
        jumps: list[tuple[str, list[str]]] = []
        for line in _run(f"{tool}-save", check=False).splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A "):
                rule = shlex.split(line)
                target = next(
                    (rule[i + 1] for i, arg in enumerate(rule[:-1]) if arg in ("-j", "-g")), ""
                )
                if rule[1] not in ours.get(table, ()) and target in ours.get(table, ()):
                    jumps.append((table, rule))
        for table, rule in jumps:
            _run(tool, "-w", "-t", table, "-D", *rule[1:], check=False)
        for table, chains in ours.items():
            for chain in chains:
                _run(tool, "-w", "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(tool, "-w", "-t", table, "-X", chain, check=False)


def _nft_tables() -> list[str]:
    """nftables tables as "FAMILY NAME" (iptables-nft makes one per iptables table it uses)."""
    if not shutil.which("nft"):
        return []
    listing = _run("nft", "list", "tables", check=False)
    return [line.split(" ", 1)[1] for line in listing.splitlines() if line.startswith("table ")]


def _drop_new_nft_tables(before: list[str]) -> None:
    """Delete the tables that iptables-nft created for the cluster, once they hold no rules
    (their empty base chains would otherwise stay hooked into the host's packet path)."""
    for table in _nft_tables():
        if table in before:
            continue
        listing = json.loads(
            _run("nft", "-j", "list", "table", *table.split(), check=False) or "{}"
        )
        if not any("rule" in item for item in listing.get("nftables", [])):
            _run("nft", "delete", "table", *table.split(), check=False)


def _https_json(url: str, context: ssl.SSLContext) -> Any:
    with urllib.request.urlopen(url, timeout=2, context=context) as response:
        return json.loads(response.read())


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return check


def _https_ok(url: str) -> Callable[[], bool]:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=insecure) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return check


def _unix_ok(path: Path) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(path))
            except OSError:
                return False
            return True

    return check


@dataclasses.dataclass
class Cluster:
    """One node: containerd, the control plane, scheduler, kubelet, kube-proxy and CoreDNS."""

    directory: Path
    plane: ControlPlane | None = None
    servers: list[Server] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()

    # Paths -------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.directory / "cluster.json"

    @property
    def kubeconfig(self) -> Path:
        """The cluster admin's kubeconfig (system:masters)."""
        return self.directory / "admin.kubeconfig"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def containerd_socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def _shim_sockets(self) -> Path:
        return self.directory / "s"

    @property
    def _runc_root(self) -> Path:
        return self.directory / "runc"

    # State -------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def _save(self, state: dict[str, Any]) -> None:
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.state_file)

    def _record_process(self, server: Server) -> None:
        state = self._load() or {}
        if server.process is not None:
            state.setdefault("processes", {})[server.name] = server.process.pid
        self._save(state)

    # Up ----------------------------------------------------------------------------------

    def _check(self) -> None:
        if os.geteuid() != 0:
            raise ClusterError("a cluster needs root (bridges, iptables, mounts, cgroups)")
        for tool in ("ip", "iptables", "iptables-save"):
            if not shutil.which(tool):
                raise ClusterError(f"{tool} not found; run scripts/bootstrap.sh --cluster")
        for name in COMMANDS:
            binary(name)
        # unix socket paths are limited to 107 bytes: a shim's is S/<64 hex digits>
        if len(str(self._shim_sockets)) + 65 > 107:
            raise ClusterError(f"{self.directory} is too long a path for containerd's sockets")
        state = self._load()
        if state and state.get("pid") and _alive(int(state["pid"])):
            raise ClusterError(f"a cluster already runs from {self.directory} (pid {state['pid']})")
        if state:
            self.down()  # a crashed run: put the host back first
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            raise ClusterError(f"{BRIDGE} exists: another cluster runs on this host")
        for tool in ("iptables", "ip6tables"):
            chains = _iptables_chains(tool)
            if chains:
                raise ClusterError(f"{tool} has Kubernetes chains already: {chains}")

    def _record_host(self) -> None:
        cgroups = [str(root / "kubepods") for root in _cgroup_roots()]
        self._save(
            {
                "pid": os.getpid(),
                "directory": str(self.directory),
                "started": time.time(),
                "sysctls": {name: read_sysctl(name) for name in SYSCTLS},
                "absent_paths": [path for path in HOST_PATHS if not os.path.lexists(path)],
                "absent_cgroups": [path for path in cgroups if not os.path.exists(path)],
                "nft_tables": _nft_tables(),
                "processes": {},
            }
        )

    def _network(self) -> None:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        # the bridge names its cluster: `down` of another folder leaves it alone
        _run("ip", "link", "set", "dev", BRIDGE, "alias", str(self.directory))
        _run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # a packet for a Service sent before kube-proxy's rules exist stays on the bridge
        _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE)
        # forwarded traffic stays between pods: nothing from the bridge leaves the machine
        _run("iptables", "-w", "-N", CHAIN)
        _run("iptables", "-w", "-A", CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN")
        _run("iptables", "-w", "-A", CHAIN, "-i", BRIDGE, "-j", "DROP")
        _run("iptables", "-w", "-A", CHAIN, "-o", BRIDGE, "-j", "DROP")
        _run("iptables", "-w", "-I", "FORWARD", "1", "-j", CHAIN)

    def _write_containerd_config(self) -> Path:
        bin_dir = Path(binary("runc")).parent
        cni = self.directory / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        network = containerdconfig.network(
            name=_NETWORK, bridge=BRIDGE, subnet=POD_CIDR, gateway=GATEWAY, ipam_dir=cni / "ipam"
        )
        (cni / "net.d" / "10-rhime.conflist").write_text(json.dumps(network, indent=2))
        root = self.directory / "containerd"
        config = containerdconfig.config(
            root=root,
            socket=self.containerd_socket,
            shim_sockets=self._shim_sockets,
            runc_root=self._runc_root,
            bin_dir=bin_dir,
            cni_conf_dir=cni / "net.d",
            sandbox=images.PAUSE,
        )
        path = root / "config.toml"
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        containerdconfig.refuse_pulls(root, registry=_NO_REGISTRY)
        return path

    def _spawn(self, server: Server, ready_timeout: float = 60.0) -> None:
        server.spawn()
        self.servers.append(server)
        self._record_process(server)
        self._wait(server, timeout=ready_timeout)

    def _wait(self, server: Server, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not server.ready():
            if not server.alive():
                raise ClusterError(f"{server.name} exited at start; see {server.log}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{server.name} not ready after {timeout:.0f}s; see {server.log}"
                )
            time.sleep(0.05)

    def _containerd(self) -> None:
        config = self._write_containerd_config()
        bin_dir = str(Path(binary("containerd")).parent)
        server = Server(
            "containerd",
            f"unix://{self.containerd_socket}",
            [binary("containerd"), "--config", str(config), "--log-level", "warn"],
            _unix_ok(self.containerd_socket),
            self.logs / "containerd.log",
            env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"},
        )
        self._spawn(server)

    def import_image(self, path: Path) -> None:
        """Import a docker-save tarball into containerd's k8s.io namespace (what the kubelet
        sees); pods then run it with `imagePullPolicy: Never`."""
        _run(
            binary("ctr"),
            "--address",
            str(self.containerd_socket),
            "--namespace",
            "k8s.io",
            "images",
            "import",
            str(path),
        )

    def _images(self) -> None:
        pause = images.pause(Path(binary("rhime-pause")), self.directory / "images" / "pause.tar")
        self.import_image(pause)

    def hello_image(self) -> Path:
        """The smoke-test image (`images.HELLO`) as a tarball, for `import_image`."""
        return images.hello(Path(binary("rhime-hello")), self.directory / "images" / "hello.tar")

    def _control_plane(self) -> ControlPlane:
        plane = ControlPlane(
            self.directory,
            address=GATEWAY,
            flags={
                "kube-apiserver": [
                    "--authorization-mode=Node,RBAC",
                    "--enable-admission-plugins=NodeRestriction",
                    # the kubernetes Service's endpoints: this address, reachable from pods
                    "--endpoint-reconciler-type=lease",
                    f"--kubelet-certificate-authority={self.directory / 'pki' / 'ca.crt'}",
                ],
            },
        )
        self.plane = plane
        plane.start(timeout=90)
        for server in plane.servers:
            self._record_process(server)
        return plane

    def _access(self, plane: ControlPlane) -> None:
        """RBAC for the node's clients, and the kube-dns Service in front of host CoreDNS."""
        plane.request("POST", f"{nodeaccess.RBAC}/clusterroles", nodeaccess.COREDNS_ROLE)
        for body in nodeaccess.bindings():
            plane.request("POST", f"{nodeaccess.RBAC}/clusterrolebindings", body)
        plane.request(
            "POST",
            "/api/v1/namespaces/kube-system/services",
            nodeaccess.dns_service(cluster_ip=DNS_IP),
        )
        plane.request(
            "POST",
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
            nodeaccess.dns_endpoints(address=GATEWAY),
        )

    def _scheduler(self, plane: ControlPlane) -> Server:
        config = plane.client_kubeconfig("kube-scheduler", user="system:kube-scheduler")
        port = free_port()
        return Server(
            "kube-scheduler",
            f"https://127.0.0.1:{port}",
            [
                binary("kube-scheduler"),
                f"--kubeconfig={config}",
                f"--authentication-kubeconfig={config}",
                f"--authorization-kubeconfig={config}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
            ],
            _https_ok(f"https://127.0.0.1:{port}/healthz"),
            self.logs / "kube-scheduler.log",
        )

    def _kubelet(self, plane: ControlPlane) -> Server:
        folder = self.directory / "kubelet"
        root = folder / "root"
        root.mkdir(parents=True, exist_ok=True)
        kubeconfig = plane.client_kubeconfig(
            "kubelet", user=f"system:node:{NODE}", group="system:nodes"
        )
        serving = plane.authority.issue(
            "kubelet-serving", common_name=NODE, server=True, hosts=[GATEWAY, NODE]
        )
        # pods with dnsPolicy Default read this: the cluster's DNS, never the host's
        resolv = folder / "resolv.conf"
        resolv.write_text(f"nameserver {GATEWAY}\n")
        port, healthz = free_port(), free_port()
        config = kubelet_configuration(
            address=GATEWAY,
            port=port,
            healthz_port=healthz,
            serving_cert=serving.cert,
            serving_key=serving.key,
            client_ca=plane.ca,
            runtime_socket=self.containerd_socket,
            cluster_dns=DNS_IP,
            resolv_conf=resolv,
            pod_logs=folder / "pod-logs",
        )
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return Server(
            "kubelet",
            f"https://{GATEWAY}:{port}",
            [
                binary("kubelet"),
                f"--config={path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={root}",
                f"--hostname-override={NODE}",
                f"--node-ip={GATEWAY}",
            ],
            _http_ok(f"http://127.0.0.1:{healthz}/healthz"),
            self.logs / "kubelet.log",
        )

    def _kube_proxy(self, plane: ControlPlane) -> Server:
        kubeconfig = plane.client_kubeconfig("kube-proxy", user="system:kube-proxy")
        healthz, metrics = free_port(), free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": NODE,
            "healthzBindAddress": f"127.0.0.1:{healthz}",
            "metricsBindAddress": f"127.0.0.1:{metrics}",
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            # NodePorts only on the bridge, and no route_localnet for them on loopback
            "nodePortAddresses": [f"{GATEWAY}/32"],
            "iptables": {"localhostNodePorts": False},
            # zeros: leave the host's conntrack settings alone (no sysctl writes)
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "oomScoreAdj": 0,
        }
        path = self.directory / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        return Server(
            "kube-proxy",
            f"http://127.0.0.1:{healthz}",
            [binary("kube-proxy"), f"--config={path}"],
            _http_ok(f"http://127.0.0.1:{healthz}/healthz"),
            self.logs / "kube-proxy.log",
        )

    def _coredns(self, plane: ControlPlane) -> Server:
        kubeconfig = plane.client_kubeconfig("coredns", user="rhime:coredns")
        ready = free_port()
        corefile = self.directory / "Corefile"
        corefile.write_text(
            f"""\
cluster.local in-addr.arpa ip6.arpa {{
    bind {GATEWAY}
    errors
    ready 127.0.0.1:{ready}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} rhime:coredns
        pods insecure
        ttl 5
    }}
    cache 5
}}
. {{
    bind {GATEWAY}
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""
        )
        return Server(
            "coredns",
            f"dns://{GATEWAY}:53",
            [binary("coredns"), "-conf", str(corefile)],
            _http_ok(f"http://127.0.0.1:{ready}/ready"),
            self.logs / "coredns.log",
        )

    def node_ready(self) -> bool:
        if self.plane is None:
            return False
        try:
            node = self.plane.request("GET", f"/api/v1/nodes/{NODE}")
        except (urllib.error.URLError, OSError):
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def up(self, *, on_step: Callable[[str, float], None] | None = None) -> Path:
        """Start everything, wait until the node is Ready and DNS answers, and return the
        admin kubeconfig. On failure everything started is torn down again."""
        self._check()
        if self.directory.exists():
            if mounts_under(self.directory):
                raise ClusterError(f"mounts remain under {self.directory}")
            shutil.rmtree(self.directory)  # new certificates, new cluster: start clean
        self.directory.mkdir(parents=True)
        self._record_host()

        def step(name: str, action: Callable[[], object]) -> None:
            started = time.monotonic()
            action()
            self.timings[name] = time.monotonic() - started
            if on_step:
                on_step(name, self.timings[name])

        try:
            step("network", self._network)
            step("containerd", self._containerd)
            step("pause image", self._images)
            step("control plane", self._control_plane)
            assert self.plane is not None
            plane = self.plane
            step("rbac and kube-dns", lambda: self._access(plane))
            node = [self._scheduler(plane), self._kubelet(plane), self._kube_proxy(plane)]
            node.append(self._coredns(plane))

            def start_node() -> None:
                for server in node:
                    server.spawn()
                    self.servers.append(server)
                    self._record_process(server)
                for server in node:
                    self._wait(server, timeout=60)

            step("scheduler, kubelet, kube-proxy, coredns", start_node)
            step("node ready", self._wait_node_ready)
        except BaseException:
            self.down()
            raise
        return self.kubeconfig

    def _wait_node_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.node_ready():
            for server in self.servers:
                if not server.alive():
                    raise ClusterError(f"{server.name} exited; see {server.log}")
            if time.monotonic() > deadline:
                raise ClusterError(f"node {NODE} not Ready after {timeout:.0f}s; see the logs")
            time.sleep(0.1)

    # Down --------------------------------------------------------------------------------

    def _kill_containers(self, state: dict[str, Any] | None) -> None:
        """Every container (runc), then every shim of this cluster, then anything left in
        the kubelet's cgroups (those it created)."""
        runc = Path(self._runc_root / "k8s.io")
        if runc.is_dir():
            with contextlib.suppress(ServerError):
                for line in _run(
                    binary("runc"), "--root", str(runc), "list", "-q", check=False
                ).split():
                    _run(
                        binary("runc"), "--root", str(runc), "delete", "--force", line, check=False
                    )
        address = str(self.containerd_socket)
        shims = [
            int(pid)
            for pid in os.listdir("/proc")
            if pid.isdigit()
            and any(a.endswith("containerd-shim-runc-v2") for a in _cmdline(int(pid))[:1])
            and address in _cmdline(int(pid))
        ]
        _end(shims, grace=0)
        for tree in map(Path, (state or {}).get("absent_cgroups") or []):
            if not tree.is_dir():
                continue
            for folder, _dirs, _files in os.walk(tree):
                with contextlib.suppress(OSError):
                    for pid in Path(folder, "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)

    def _stop_processes(self, state: dict[str, Any] | None) -> None:
        # The node first (so nothing restarts containers), the control plane last.
        for server in reversed(self.servers):
            server.stop(timeout=5.0)
        self.servers = []
        if self.plane is not None:
            self.plane.stop()
        if state:
            pids = [
                int(pid)
                for pid in (state.get("processes") or {}).values()
                if _alive(int(pid)) and str(self.directory) in " ".join(_cmdline(int(pid)))
            ]
            _end(pids, grace=5.0)

    def _owns_host_network(self) -> bool:
        """Whether the bridge, if any, is this cluster's (not another folder's, running)."""
        try:
            alias = Path(f"/sys/class/net/{BRIDGE}/ifalias").read_text().strip()
        except OSError:
            return True
        return alias in ("", str(self.directory))

    def _network_down(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            for line in _run(
                "ip", "-o", "link", "show", "master", BRIDGE, check=False
            ).splitlines():
                port = line.split(":")[1].strip().split("@")[0]
                _run("ip", "link", "delete", port, check=False)
            _run("ip", "route", "delete", SERVICE_CIDR, "dev", BRIDGE, check=False)
            _run("ip", "link", "delete", BRIDGE, check=False)

    def _restore_host(self, state: dict[str, Any]) -> None:
        if "nft_tables" in state:
            _drop_new_nft_tables(state["nft_tables"])
        for name, value in (state.get("sysctls") or {}).items():
            if value is not None and read_sysctl(name) != value:
                with contextlib.suppress(OSError):
                    _sysctl_path(name).write_text(value)
        deadline = time.monotonic() + 5.0  # killed containers take a moment to leave
        for path in state.get("absent_cgroups") or []:
            while os.path.isdir(path):
                for folder, _dirs, _files in os.walk(path, topdown=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)
                if not os.path.isdir(path) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        logs = Path("/var/log/containers")
        if logs.is_dir():
            for link in logs.iterdir():
                if link.is_symlink() and os.readlink(link).startswith(str(self.directory)):
                    link.unlink()
        for cached in Path("/var/lib/cni/results").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                netns = str(json.loads(cached.read_text()).get("netns", ""))
                if netns.startswith(f"{self.directory}/"):  # a pod sandbox of this cluster
                    cached.unlink()
        Path("/var/lib/kubelet/device-plugins/kubelet.sock").unlink(missing_ok=True)
        for path in state.get("absent_paths") or []:
            for folder, _dirs, _files in os.walk(path, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only if empty: never another program's files

    def down(self) -> None:
        """Stop everything and put the host back as `up` found it. Idempotent; works for a
        cluster started by another process (which is stopped first) or one that crashed.
        The record stays if a step fails, so that `down` can be run again."""
        state = self._load()
        if state and state.get("pid") not in (None, os.getpid()) and _alive(int(state["pid"])):
            # `rhime cluster up` in another shell: it tears down on SIGTERM
            _end([int(state["pid"])], grace=90.0)
            state = self._load()
        if state is None and not self.servers and self.plane is None:
            return
        started = time.monotonic()
        failures: list[str] = []

        def attempt(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except (ServerError, OSError, subprocess.SubprocessError, ValueError) as exc:
                failures.append(f"{what}: {exc}")

        # With another folder's cluster running, only this folder's processes and mounts
        # are ours to end: the network, cgroups and sysctls are that cluster's now.
        owner = self._owns_host_network()
        attempt("stopping processes", lambda: self._stop_processes(state))
        self.plane = None
        attempt("killing containers", lambda: self._kill_containers(state if owner else None))
        attempt("unmounting", lambda: _unmount_all(self.directory))
        if owner:
            attempt("kube-proxy --cleanup", lambda: _run(binary("kube-proxy"), "--cleanup"))
            attempt("removing iptables chains", _sweep_iptables)
            attempt("removing the bridge", self._network_down)
            if state:
                attempt("restoring the host", lambda: self._restore_host(state))
        else:
            failures.append(f"{BRIDGE} belongs to another cluster: the host is left to it")
        self.timings["down"] = time.monotonic() - started
        if failures:
            raise ClusterError("down did not finish: " + "; ".join(failures))
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    # Status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What runs: the `up` process, each component, and whether the node is Ready."""
        state = self._load()
        if state is None:
            return {"state": "down", "directory": str(self.directory)}
        owner = int(state.get("pid") or 0)
        processes = {
            name: _alive(int(pid)) and str(self.directory) in " ".join(_cmdline(int(pid)))
            for name, pid in (state.get("processes") or {}).items()
        }
        report: dict[str, Any] = {
            "state": "up" if owner and _alive(owner) else "crashed (run: rhime cluster down)",
            "directory": str(self.directory),
            "pid": owner,
            "processes": processes,
            "kubeconfig": str(self.kubeconfig),
        }
        if report["state"] == "up":
            report["node_ready"] = self._ready_from_files()
        return report

    def _ready_from_files(self) -> bool:
        try:
            config = yaml.safe_load(self.kubeconfig.read_text())
            server = config["clusters"][0]["cluster"]["server"]
            credentials = config["users"][0]["user"]
        except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
            return False
        context = ssl.create_default_context(cafile=str(self.directory / "pki" / "ca.crt"))
        context.load_cert_chain(credentials["client-certificate"], credentials["client-key"])
        try:
            node = _https_json(f"{server}/api/v1/nodes/{NODE}", context)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def up(*, data: str) -> int:
    """`rhime cluster up`: a cluster until Ctrl-C or SIGTERM, then the host put back."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster = Cluster(Path(data))
    started = time.monotonic()
    try:
        cluster.up(on_step=lambda name, seconds: print(f"{name}: {seconds:.1f}s", flush=True))
    except (ServerError, OSError) as exc:
        print(exc, flush=True)
        return 1
    try:
        cluster.import_image(cluster.hello_image())
        # What `rhime image build` and `rhime image infra` left, so the platform can run.
        for archive in sorted((REPO / ".rhime" / "images").glob("*.tar")):
            cluster.import_image(archive)
            print(f"imported {archive.name}", flush=True)
        kubectl = binary("kubectl")
        print(
            f"\nready in {time.monotonic() - started:.1f}s\n"
            f"export KUBECONFIG={cluster.kubeconfig}\n\n"
            f"A node ({NODE}) runs pods on {POD_CIDR}; Services on {SERVICE_CIDR}, DNS at "
            f"{DNS_IP} (cluster.local only). Images are never pulled: import docker-save "
            f"tarballs ({images.HELLO} is imported) and use imagePullPolicy: Never or "
            "IfNotPresent.\nTry:\n"
            f"  {kubectl} get nodes,pods -A\n"
            f"  {kubectl} create deployment hello --image={images.HELLO} --replicas=2\n"
            f"  {kubectl} expose deployment hello --port=80 --target-port=8080\n"
            f"  curl http://$({kubectl} get service hello -o jsonpath='{{.spec.clusterIP}}')/\n"
            f"Logs: {cluster.logs}   Ctrl-C (or rhime cluster down) stops it and restores "
            "the host.",
            flush=True,
        )
        while not stopping:
            dead = [
                s
                for s in [*cluster.servers, *(cluster.plane.servers if cluster.plane else [])]
                if not s.alive()
            ]
            if dead:
                print(f"{dead[0].name} exited; see {dead[0].log}", flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("stopping and restoring the host…", flush=True)
        cluster.down()
        print(f"down in {cluster.timings.get('down', 0.0):.1f}s", flush=True)


def down(*, data: str) -> int:
    """`rhime cluster down`: stop a running `up`, or clean up after a crashed one."""
    cluster = Cluster(Path(data))
    if cluster.status()["state"] == "down":
        print(f"no cluster recorded in {cluster.directory}; nothing to do")
        return 0
    started = time.monotonic()
    try:
        cluster.down()
    except ServerError as exc:
        print(exc)
        return 1
    print(f"down; host restored ({time.monotonic() - started:.1f}s)")
    return 0


def status(*, data: str) -> int:
    report = Cluster(Path(data)).status()
    print(json.dumps(report, indent=2))
    return 0 if report["state"] == "up" else 1
