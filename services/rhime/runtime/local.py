"""`rhime up`: the whole platform on this machine, the embedded default.

Backing servers start on loopback (data under `--data`, kept between runs), then every
component of the catalogue runs as its own process, just as each runs in its own container
on Kubernetes. A component that crashes is restarted with backoff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from rhime import catalogue, grants
from rhime.runtime import servers, status

# What the store users' passwords derive from; no component is given it.
STORE_SEED = "RHIME_STORE_SEED"
_SECRET_NAMES = (*catalogue.SECRET_KEYS[catalogue.Secret.AUTH], STORE_SEED)


def local_secrets(directory: Path) -> dict[str, str]:
    """Secrets for this machine's platform: generated once, kept in the data folder (0600)."""
    path = directory / "secrets.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            values[name] = value
    missing = [n for n in _SECRET_NAMES if n not in values]
    if missing:
        from cryptography.fernet import Fernet

        for name in missing:
            values[name] = (
                Fernet.generate_key().decode()
                if name == catalogue.ENCRYPTION_KEY
                else secrets.token_urlsafe(48)
            )
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


def secret_env(component: catalogue.Component, *, secret_values: dict[str, str]) -> dict[str, str]:
    """The Secret keys `component` reads, as the operator gives them: only its own."""
    wanted = {key for keys in component.secret_keys().values() for key in keys}
    return {k: v for k, v in secret_values.items() if k in wanted}


def store_env(
    component: catalogue.Component, *, access: grants.Access, urls: dict[str, str]
) -> dict[str, str]:
    """The Redis and NATS URLs of `component`, with its own credentials (none when it does
    not use the store: it cannot connect at all)."""
    env: dict[str, str] = {}
    if "redis" in urls and grants.uses(component, catalogue.Backing.REDIS):
        env["RHIME_REDIS_URL"] = access.url(urls["redis"], user=component.name)
    if "nats" in urls and grants.uses(component, catalogue.Backing.NATS):
        env["RHIME_NATS_URL"] = access.url(urls["nats"], user=component.name)
    return env


def component_env(
    *,
    urls: dict[str, str],
    public_url: str,
    gateway_url: str,
    namespace: str = "rhime",
) -> dict[str, str]:
    """The environment every local component gets (Kubernetes sets the same names); Redis
    and NATS come per component, from `store_env`."""
    env = {
        "RHIME_NAMESPACE": namespace,
        "RHIME_SERVICE_URL_TEMPLATE": "http://127.0.0.1:{port}",
        "RHIME_PUBLIC_URL": public_url,
        "RHIME_GATEWAY_URL": gateway_url,
        "RHIME_LOG_JSON": "true",
        "RHIME_COOKIE_SECURE": "false",
        # argon2id at OWASP's minimum (19 MiB, t=2): one laptop runs every component at once
        "RHIME_ARGON2_TIME_COST": "2",
        "RHIME_ARGON2_MEMORY_KIB": "19456",
        "RHIME_ARGON2_PARALLELISM": "1",
        # Everyone on this machine (every browser tab, the demo seed signing up its 40 people)
        # is one address, 127.0.0.1: the per-address auth limits are for a public gateway.
        "RHIME_RATE_LIMIT_IP": "1000",
        "RHIME_SIGNIN_CLIENT_MAX_FAILURES": "1000",
    }
    if "mongo" in urls:
        env["RHIME_MONGO_URL"] = urls["mongo"]
    if "s3" in urls:
        s3 = urlsplit(urls["s3"])
        env |= {
            "RHIME_S3_ENDPOINT_URL": urls["s3"],
            "RHIME_S3_PUBLIC_ENDPOINT_URL": urls["s3"],
            # browsers upload profile pictures straight to it
            "RHIME_UPLOAD_ORIGIN": f"{s3.scheme}://{s3.netloc}",
        }
    if "spotify" in urls:
        env |= {
            "RHIME_SPOTIFY_API_URL": urls["spotify"],
            "RHIME_SPOTIFY_ACCOUNTS_URL": urls["spotify"],
        }
    return env


def stand_in_secrets() -> dict[str, str]:
    """The credentials of the local S3 and fake Spotify: known, as they guard nothing."""
    return {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "RHIME_SPOTIFY_CLIENT_ID": servers.FAKE_SPOTIFY_CLIENT_ID,
        "RHIME_SPOTIFY_CLIENT_SECRET": servers.FAKE_SPOTIFY_CLIENT_SECRET,
    }


def available(component: catalogue.Component) -> bool:
    module = component.entrypoint.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@dataclasses.dataclass
class Process:
    component: catalogue.Component
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child process
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "rhime", "serve", self.component.name],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=servers.die_with_parent,
        )
        out.close()
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def ready(self) -> bool:
        return self.unready() is None

    def unready(self) -> str | None:
        """Why the component is not ready (its readiness answer), or None when it is."""
        if not self.running():
            return "not running"
        port = self.env["RHIME_PORT"]
        if self.component.kind == catalogue.Kind.GRPC:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", int(port)), 0.3),
            ):
                return None
            return "not listening"
        url = f"http://127.0.0.1:{port}{self.component.probe.readiness}"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                return None if response.status == 200 else f"status {response.status}"
        except urllib.error.HTTPError as error:
            return error.read().decode(errors="replace")[:300]
        except OSError as error:
            return str(error)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Supervisor:
    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def tick(self) -> list[str]:
        """Restart crashed processes with backoff; returns what happened."""
        notes = []
        now = time.monotonic()
        for p in self.processes:
            if p.running() or p.popen is None:
                continue
            if p.next_start == 0.0:
                if now - p.started_at > 60:
                    p.restarts = 0  # it had been up a while: start the backoff afresh
                delay = min(2**p.restarts, 30)
                p.next_start = now + delay
                notes.append(
                    f"{p.component.name} exited ({p.popen.returncode}); "
                    f"restarting in {delay}s, log: {p.log}"
                )
            elif now >= p.next_start:
                p.restarts += 1
                p.next_start = 0.0
                p.start()
        return notes

    def stop(self) -> None:
        for p in self.processes:
            p.stop()
        for p in self.processes:
            p.wait(15)


def _table(processes: list[Process]) -> str:
    rows = [f"  {'component':24} {'kind':7} {'port':>5}  state"]
    for p in processes:
        state = "ready" if p.ready() else ("starting" if p.running() else "down")
        rows.append(
            f"  {p.component.name:24} {p.component.kind:7} {p.env['RHIME_PORT']:>5}  {state}"
        )
    return "\n".join(rows)


@dataclasses.dataclass
class Platform:
    runtime: servers.Runtime
    supervisor: Supervisor
    gateway_url: str
    data: Path  # holds `status.STATE_FILE` while it runs

    def ready(self) -> bool:
        return all(p.ready() for p in self.supervisor.processes)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                down = {p.component.name: p.unready() for p in self.supervisor.processes}
                raise TimeoutError(
                    "components not ready: "
                    + "; ".join(f"{name} ({why})" for name, why in down.items() if why)
                )
            time.sleep(0.2)

    def process(self, name: str) -> Process:
        return next(p for p in self.supervisor.processes if p.component.name == name)


def _ports(
    components: list[catalogue.Component], *, gateway_port: int, free_ports: bool
) -> dict[str, int]:
    """Where each component listens: the gateway on `gateway_port`, the others on the
    catalogue's ports, or on free ones (several platforms at once)."""
    return {
        c.name: gateway_port
        if c.name == "gateway"
        else (servers.free_port() if free_ports else c.port)
        for c in components
    }


def _shared_env(
    *, urls: dict[str, str], public_url: str, gateway_port: int, ports: dict[str, int]
) -> dict[str, str]:
    """What every component gets, with where each of the others listens."""
    env = component_env(
        urls=urls,
        public_url=public_url,
        gateway_url=f"http://127.0.0.1:{gateway_port}",
    )
    env["RHIME_SERVICE_URLS"] = json.dumps(
        {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    )
    return env


def _processes(
    components: list[catalogue.Component],
    *,
    env: dict[str, str],
    ports: dict[str, int],
    secret_values: dict[str, str],
    access: grants.Access,
    urls: dict[str, str],
    log_dir: Path,
) -> list[Process]:
    """One process per component: the shared `env`, then only its own secrets and store
    credentials, and its port."""
    return [
        Process(
            component=c,
            log=log_dir / f"{c.name}.log",
            env={
                **env,
                **secret_env(c, secret_values=secret_values),
                **store_env(c, access=access, urls=urls),
                "RHIME_PORT": str(ports[c.name]),
            },
        )
        for c in components
    ]


def _start_backing(
    *, data: Path, secret_values: dict[str, str], say: Callable[[str], None]
) -> tuple[servers.Runtime, grants.Access]:
    access = grants.Access(seed=secret_values[STORE_SEED], namespace="rhime", admin=True)
    runtime = servers.Runtime(directory=data / "servers", access=access)
    say("starting backing servers: " + ", ".join(runtime.servers))
    runtime.start(on_ready=lambda name: say(f"  {name} ready"))
    return runtime, access


@contextlib.contextmanager
def platform(
    *,
    data: Path,
    gateway_port: int,
    log_dir: Path,
    quiet: bool = False,
    public_host: str = "localhost",
    free_ports: bool = False,
) -> Iterator[Platform]:
    """Backing servers plus every available component as a process. `public_host` is what
    browsers use (cookies and the OAuth redirect must stay on one host). With `free_ports`,
    components listen on free ports instead of the catalogue's (several platforms at once)."""

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    log_dir.mkdir(parents=True, exist_ok=True)
    secret_values = local_secrets(data) | stand_in_secrets()
    runtime, access = _start_backing(data=data, secret_values=secret_values, say=say)
    components = [c for c in catalogue.COMPONENTS if c.kind != catalogue.Kind.CRON and available(c)]
    ports = _ports(components, gateway_port=gateway_port, free_ports=free_ports)
    public_url = f"http://{public_host}:{gateway_port}"
    env = _shared_env(
        urls=runtime.urls, public_url=public_url, gateway_port=gateway_port, ports=ports
    )
    supervisor = Supervisor(
        _processes(
            components,
            env=env,
            ports=ports,
            secret_values=secret_values,
            access=access,
            urls=runtime.urls,
            log_dir=log_dir,
        )
    )
    # where `rhime status` finds the components' metrics
    state = status.record(data, ports=ports, kinds={c.name: str(c.kind) for c in components})
    try:
        supervisor.start()
        yield Platform(runtime=runtime, supervisor=supervisor, gateway_url=public_url, data=data)
    finally:
        say("\nstopping components...")
        state.unlink(missing_ok=True)
        supervisor.stop()
        runtime.stop()
        say("stopped.")


def up(*, data: str, fresh: bool, gateway_port: int) -> int:
    directory = Path(data).resolve()
    if fresh and directory.exists():
        shutil.rmtree(directory)
    log_dir = directory / "logs" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {log_dir}", flush=True)
    interrupted = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with platform(data=directory, gateway_port=gateway_port, log_dir=log_dir) as running:
        supervisor = running.supervisor
        deadline = time.monotonic() + 90
        shown = -1
        while not interrupted:
            ready = sum(p.ready() for p in supervisor.processes)
            if ready != shown:
                print(f"components ready: {ready}/{len(supervisor.processes)}", flush=True)
                shown = ready
            if ready == len(supervisor.processes) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not interrupted:
            print(_table(supervisor.processes), flush=True)
            print(
                f"\nmetrics: http://127.0.0.1:<port>/metrics of each component (ports above, "
                f"also in {directory / status.STATE_FILE}); live table: `rhime status`",
                flush=True,
            )
            print(
                f"\nRhime is up: http://localhost:{gateway_port}  (API docs: "
                f"http://localhost:{gateway_port}/api/docs)  Ctrl-C stops it.",
                flush=True,
            )
        while not interrupted:
            for note in supervisor.tick():
                print(note, flush=True)
            time.sleep(0.5)
    return 0
