"""Backing servers on loopback: Redis, NATS with JetStream, a MongoDB-wire server, moto S3 and
the fake Spotify. Used by the test fixtures and by `rhime up`.

Each server gets a free port and a data folder under the runtime's directory; `start()` waits
until every one answers and `stop()` ends them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rhime import grants

REPO = Path(__file__).resolve().parents[3]
ALL = ("redis", "nats", "mongo", "s3", "spotify")
# The fake Spotify's app credentials; the local spotify components are given the same.
FAKE_SPOTIFY_CLIENT_ID = "rhime-local"
FAKE_SPOTIFY_CLIENT_SECRET = "rhime-local-secret"


class ServerError(RuntimeError):
    pass


def die_with_parent() -> None:
    """Run in a child before exec: Linux sends it SIGTERM when its parent dies, so servers
    and components never outlive a killed test run or `rhime up`."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, outside the kernel's ephemeral range: a port the kernel hands
    out (bind to 0) can meanwhile become the source port of some outgoing connection, and the
    server meant to listen on it then fails with "address already in use"."""
    low, high = _ephemeral_range()
    candidates = [*range(10000, low), *range(high + 1, 65536)]
    for port in random.sample(candidates, min(len(candidates), 500)):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return int(port)
    with socket.socket() as sock:  # no room outside the range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _venv_bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise ServerError(f"{name} not found; run scripts/bootstrap.sh")
    return found


def ferretdb_binary() -> str:
    candidates = [os.environ.get("RHIME_FERRETDB_BIN", ""), str(REPO / ".rhime/bin/rhime-ferretdb")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise ServerError(
        "no MongoDB-wire server: install mongod, set MONGODB_URL, "
        "or run scripts/bootstrap.sh to build FerretDB"
    )


@dataclasses.dataclass
class Server:
    name: str
    url: str
    command: list[str] | None
    ready: Callable[[], bool]
    log: Path
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        if self.command is None:
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _tcp_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    return check


def _http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status < 500)
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    return check


def _redis_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                # it answers: with PONG, or by asking who is there when it has users
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    return check


def _mongo_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import pymongo

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return True
        except Exception:
            return False
        finally:
            client.close()

    return check


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def redis(data: Path, logs: Path, port: int, *, access: grants.Access | None = None) -> Server:
    data.mkdir(parents=True, exist_ok=True)
    url = f"redis://127.0.0.1:{port}/0"
    users: list[str] = []
    if access is not None:
        users = ["--aclfile", str(_private(data / "users.acl", access.redis_acl()))]
        url = access.url(url, user=grants.ADMIN)
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        "--save",
        "60 1",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        *users,
        # Bounded; full means writes are refused, never that state is evicted (docs/kit.md).
        "--maxmemory",
        "256mb",
        "--maxmemory-policy",
        "noeviction",
    ]
    return Server("redis", url, command, _redis_ready(port), logs / "redis.log")


def nats(data: Path, logs: Path, port: int, *, access: grants.Access | None = None) -> Server:
    monitor = free_port()
    url = f"nats://127.0.0.1:{port}"
    users: list[str] = []
    if access is not None:
        data.mkdir(parents=True, exist_ok=True)
        conf = json.dumps(access.nats_authorization(), indent=1)
        users = ["-c", str(_private(data / "nats.conf", conf))]
        url = access.url(url, user=grants.ADMIN)
    command = [
        _venv_bin("nats-server"),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        str(monitor),
        "-js",
        "-sd",
        str(data / "jetstream"),
        *users,
    ]
    ready = _http_ready(f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true")
    return Server("nats", url, command, ready, logs / "nats.log")


def mongo(data: Path, logs: Path, port: int) -> Server:
    external = os.environ.get("MONGODB_URL")
    if external:
        return Server("mongo", external, None, _mongo_ready(external), logs / "mongo.log")
    url = f"mongodb://127.0.0.1:{port}/"
    data.mkdir(parents=True, exist_ok=True)
    if shutil.which("mongod"):
        command = [
            "mongod",
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--dbpath",
            str(data),
            "--quiet",
        ]
    else:
        command = [ferretdb_binary(), "-listen", f"127.0.0.1:{port}", "-dir", str(data)]
    return Server("mongo", url, command, _mongo_ready(url), logs / "mongo.log")


def s3(data: Path, logs: Path, port: int) -> Server:
    command = [_venv_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return Server(
        "s3",
        f"http://127.0.0.1:{port}",
        command,
        _http_ready(f"http://127.0.0.1:{port}/moto-api/"),
        logs / "s3.log",
    )


def spotify(data: Path, logs: Path, port: int) -> Server:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "rhime.fakespotify.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {
        "RHIME_FAKE_SPOTIFY_CLIENT_ID": FAKE_SPOTIFY_CLIENT_ID,
        "RHIME_FAKE_SPOTIFY_CLIENT_SECRET": FAKE_SPOTIFY_CLIENT_SECRET,
    }
    return Server(
        "spotify",
        f"http://127.0.0.1:{port}",
        command,
        _http_ready(f"http://127.0.0.1:{port}/v1/me"),
        logs / "spotify.log",
        env=env,
    )


_FACTORIES = {"redis": redis, "nats": nats, "mongo": mongo, "s3": s3, "spotify": spotify}


class Runtime:
    """The backing servers of one local platform or one test session. With `access`, Redis
    and NATS admit only its users, and `urls` carry the admin's credentials."""

    def __init__(
        self,
        *,
        directory: Path,
        names: Sequence[str] = ALL,
        ports: dict[str, int] | None = None,
        access: grants.Access | None = None,
    ) -> None:
        self.directory = directory
        self.logs = directory / "logs"
        self.access = access
        wanted = ports or {}
        factories: dict[str, Callable[[Path, Path, int], Server]] = {
            **_FACTORIES,
            "redis": functools.partial(redis, access=access),
            "nats": functools.partial(nats, access=access),
        }
        self.servers: dict[str, Server] = {
            name: factories[name](directory / name, self.logs, wanted.get(name) or free_port())
            for name in names
        }

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def start(
        self, *, timeout: float = 60.0, on_ready: Callable[[str], None] | None = None
    ) -> None:
        for server in self.servers.values():
            server.spawn()
        deadline = time.monotonic() + timeout
        waiting = dict(self.servers)
        while waiting:
            for name, server in list(waiting.items()):
                if not server.alive():
                    self.stop()
                    raise ServerError(f"{name} exited at start; see {server.log}")
                if server.ready():
                    del waiting[name]
                    if on_ready:
                        on_ready(name)
            if waiting and time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"not ready after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.05)

    def stop(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()

    def restart(self, name: str) -> None:
        server = self.servers[name]
        server.stop()
        server.spawn()
        deadline = time.monotonic() + 30
        while not server.ready():
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not come back")
            time.sleep(0.05)


@contextlib.contextmanager
def running(
    *, directory: Path, names: Sequence[str] = ALL, access: grants.Access | None = None
) -> Iterator[Runtime]:
    runtime = Runtime(directory=directory, names=names, access=access)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()
