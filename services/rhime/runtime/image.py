"""Rhime's image without a container engine: the Dockerfile's own steps, carried out with
mmdebstrap and chroot, written as a `docker save` archive (`ctr -n k8s.io images import`).

The Dockerfile stays the recipe (for registries it is built with Docker as it is), and this
builder reads it rather than repeating it: the image's ENV, WORKDIR, USER, EXPOSE and CMD,
the COPY'd paths, and the RUN commands themselves (uv sync with its flags, the gRPC
generation, compileall, the user's creation, the dev target's steps) come from the Dockerfile
(`plan()`), and an instruction it cannot carry out is refused. tests/image/test_image_dockerfile.py
parses the Dockerfile on its own and checks the plan, and the built image, against it.

What the Dockerfile takes from elsewhere, this machine provides:
  - `python:X.Y-slim-SUITE` -> Debian SUITE's python3 from mmdebstrap (with the slim images'
    dpkg path excludes); the build stops if that python3 is not X.Y;
  - the uv image's /uv -> the uv beside this Python (.venv/bin/uv);
  - RUN --mount=type=cache for uv -> this machine's uv cache; RUN --mount=type=bind of a
    context file -> that file.

Only the build stage's /app is kept, as `COPY --from=build /app /app` does. Layers, each
cached under .rhime/image-cache by a hash of its inputs and of the layers below it:
  base    Debian and its python3, then the runtime stage's RUNs before that COPY (the user);
          keyed by the base image, mmdebstrap's options and those RUNs
  venv    the build stage's RUNs before its first COPY (the locked dependencies in
          /app/.venv); keyed by those RUNs and the files they bind (pyproject.toml, uv.lock)
  app     the COPY'd sources and the build stage's later RUNs; keyed by the sources' content
  target  the target stage's own RUNs, when it has any (dev: the standins group, writable
          sources), a layer of its own as in Docker
so an edit to the code rebuilds only the app layer (and dev's target layer), in seconds.
The uv used is this machine's (its version is part of the keys), not the uv image's.
Tags: rhime.local/rhime:latest (production) and rhime.local/rhime:dev (dev).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rhime.runtime import dockerfile as df
from rhime.runtime import imagearchive, rootfs

REPO = Path(__file__).resolve().parents[3]
TAGS = {"production": "rhime.local/rhime:latest", "dev": "rhime.local/rhime:dev"}
# The base image's environment, as Docker's default and the python images set it.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
BASE_VARIANT = "apt"
BASE_PACKAGES = ("python3", "ca-certificates")
# What Debian's slim images leave out.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
# Outside images whose files the Dockerfile copies, and where this machine has them.
TOOL_IMAGES = ("ghcr.io/astral-sh/uv",)
_PYTHON_IMAGE = re.compile(r"python:(\d+\.\d+)(?:\.\d+)?-slim-(\w+)")
_ROOT_USERS = ("root", "0", "0:0", "root:root")
_CA_INSIDE = "/run/rhime-build-ca.crt"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
# Bumped when the builder's layout of a layer changes, so old cache entries are not reused.
_LAYOUT = "1"


class ImageError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Run:
    script: str
    env: Mapping[str, str]
    workdir: str
    user: str
    mounts: tuple[Mapping[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """The Dockerfile's steps for one target, grouped by the layer they land in."""

    target: str
    base_image: str
    python: str
    suite: str
    tools: Mapping[str, str]  # stage name -> outside image
    base_runs: tuple[Run, ...]
    deps_runs: tuple[Run, ...]
    copies: tuple[Copy, ...]
    app_runs: tuple[Run, ...]
    export: str  # the build stage's path copied into the image, at the same path
    target_runs: tuple[Run, ...]
    config: Mapping[str, Any]


def _resolve(workdir: str, path: str) -> str:
    joined = os.path.normpath(os.path.join(workdir, path))
    return joined + "/" if path.endswith("/") and joined != "/" else joined


def _unsupported(stage: df.Stage, ins: df.Instruction) -> ImageError:
    return ImageError(
        f"Dockerfile line {ins.line} (stage {stage.name}): {ins.keyword} "
        f"{' '.join('--' + k for k, _ in ins.flags)} is not something rhime.runtime.image "
        "can carry out; teach it, so the two stay in step"
    )


def _build_stage(
    stage: df.Stage, tools: Mapping[str, str]
) -> tuple[list[Run], list[Copy], list[Run]]:
    env = dict(BASE_ENV)
    workdir = "/"
    tool_mounts: list[dict[str, str]] = []
    deps: list[Run] = []
    copies: list[Copy] = []
    app: list[Run] = []
    for ins in stage.instructions:
        source = ins.flag("from")
        if ins.keyword == "COPY" and source in tools and len(ins.flags) == 1:
            src, dest = ins.args.split()
            tool_mounts.append({"from": str(source), "source": src, "target": dest})
        elif ins.keyword == "COPY" and not ins.flags:
            *sources, dest = ins.args.split()
            copies.append(Copy(sources=tuple(sources), dest=_resolve(workdir, dest)))
        elif ins.keyword == "ENV":
            env.update((k, df.expand(v, env)) for k, v in df.env_pairs(ins.args))
        elif ins.keyword == "WORKDIR":
            workdir = _resolve(workdir, ins.args)
        elif ins.keyword == "RUN" and set(k for k, _ in ins.flags) <= {"mount"}:
            run = Run(ins.args, dict(env), workdir, "root", (*df.mounts(ins), *tool_mounts))
            (app if copies else deps).append(run)
        else:
            raise _unsupported(stage, ins)
    return deps, copies, app


@dataclasses.dataclass
class _Reading:
    """What reading a target's chain of stages has gathered so far."""

    env: dict[str, str] = dataclasses.field(default_factory=lambda: dict(BASE_ENV))
    workdir: str = "/"
    user: str = "root"
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    base_runs: list[Run] = dataclasses.field(default_factory=list)
    target_runs: list[Run] = dataclasses.field(default_factory=list)
    # the build stage's (deps RUNs, COPYs, app RUNs), once the chain copies from it
    built: tuple[list[Run], list[Copy], list[Run]] | None = None
    export: str = ""


def _read_run(
    reading: _Reading, *, stage: df.Stage, ins: df.Instruction, tools: Mapping[str, str]
) -> None:
    mounts = df.mounts(ins)
    flags = {name for name, _ in ins.flags}
    if flags - {"mount"} or any(m.get("from") not in (None, *tools) for m in mounts):
        raise _unsupported(stage, ins)
    run = Run(ins.args, dict(reading.env), reading.workdir, reading.user, tuple(mounts))
    # RUNs before the build stage's output is copied in are the base layer's
    (reading.target_runs if reading.built else reading.base_runs).append(run)


def _read_build_copy(
    reading: _Reading,
    *,
    recipe: df.Dockerfile,
    stage: df.Stage,
    ins: df.Instruction,
    base_image: str,
    tools: Mapping[str, str],
) -> None:
    build_stage = recipe.stage(ins.flag("from") or "")
    if build_stage.base != base_image:
        raise ImageError("the build and runtime stages must share their base image")
    src, dest = ins.args.split()
    if os.path.normpath(src) != os.path.normpath(_resolve(reading.workdir, dest)):
        raise _unsupported(stage, ins)
    reading.built, reading.export = _build_stage(build_stage, tools), os.path.normpath(src)


def _read(
    reading: _Reading,
    *,
    recipe: df.Dockerfile,
    stage: df.Stage,
    ins: df.Instruction,
    base_image: str,
    tools: Mapping[str, str],
) -> None:
    """One instruction of the target's chain, into `reading` (or refused)."""
    source = ins.flag("from")
    if ins.keyword == "RUN":
        _read_run(reading, stage=stage, ins=ins, tools=tools)
    elif ins.keyword == "COPY" and recipe.has_stage(source or "") and not reading.built:
        _read_build_copy(
            reading, recipe=recipe, stage=stage, ins=ins, base_image=base_image, tools=tools
        )
    elif ins.keyword == "ENV":
        reading.env.update((k, df.expand(v, reading.env)) for k, v in df.env_pairs(ins.args))
    elif ins.keyword == "WORKDIR":
        reading.workdir = _resolve(reading.workdir, ins.args)
    elif ins.keyword == "USER":
        reading.user = ins.args
    elif ins.keyword == "EXPOSE":
        ports = reading.config.setdefault("ExposedPorts", {})
        ports.update({(p if "/" in p else p + "/tcp"): {} for p in ins.args.split()})
    elif ins.keyword in ("CMD", "ENTRYPOINT"):
        reading.config["Cmd" if ins.keyword == "CMD" else "Entrypoint"] = df.exec_form(ins.args)
    else:
        raise _unsupported(stage, ins)


def plan(recipe: df.Dockerfile, target: str) -> Plan:
    """What building `target` from `recipe` takes, read from the Dockerfile."""
    chain = recipe.chain(target)
    base_image = chain[0].base
    match = _PYTHON_IMAGE.fullmatch(base_image)
    if not match:
        raise ImageError(f"the runtime stage's base {base_image!r} is not python:X.Y-slim-SUITE")
    tools = {s.name: s.base for s in recipe.stages if s.base.rpartition(":")[0] in TOOL_IMAGES}
    reading = _Reading()
    for stage in chain:
        for ins in stage.instructions:
            _read(reading, recipe=recipe, stage=stage, ins=ins, base_image=base_image, tools=tools)
    if reading.built is None:
        raise ImageError(f"target {target!r} copies nothing from a build stage")
    config = reading.config
    config.update(
        Env=[f"{k}={v}" for k, v in reading.env.items()],
        WorkingDir=reading.workdir,
        User=reading.user,
    )
    deps, copies, app = reading.built
    return Plan(
        target=target,
        base_image=base_image,
        python=match.group(1),
        suite=match.group(2),
        tools=tools,
        base_runs=tuple(reading.base_runs),
        deps_runs=tuple(deps),
        copies=tuple(copies),
        app_runs=tuple(app),
        export=reading.export,
        target_runs=tuple(reading.target_runs),
        config=config,
    )


def _key(*parts: object) -> str:
    text = json.dumps([_LAYOUT, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _runs_key(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(run) for run in runs]


def context_files(repo: Path, copies: Sequence[Copy]) -> list[tuple[Path, str]]:
    """(file in the build context, its path in the image) for every COPY, after .dockerignore."""
    ignore = df.Ignore.read(repo)
    found: list[tuple[Path, str]] = []
    for copy in copies:
        into_folder = copy.dest.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            path = repo / source
            if path.is_dir():
                for folder, dirs, files in os.walk(path):
                    dirs.sort()
                    for name in sorted(files):
                        file = Path(folder, name)
                        rel = file.relative_to(repo).as_posix()
                        if not ignore.excluded(rel):
                            inside = file.relative_to(path).as_posix()
                            found.append((file, f"{copy.dest.rstrip('/')}/{inside}"))
            elif path.is_file() and not ignore.excluded(source):
                dest = f"{copy.dest.rstrip('/')}/{path.name}" if into_folder else copy.dest
                found.append((path, dest))
            else:
                raise ImageError(f"COPY {source}: not in the build context (or .dockerignore'd)")
    return found


def _machine_ca() -> Path | None:
    ca = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    return ca if ca.is_file() else None


def _tree_hash(files: Sequence[tuple[Path, str]]) -> str:
    digest = hashlib.sha256()
    for path, dest in files:
        mode = path.stat().st_mode & 0o777
        digest.update(f"{dest}\0{mode:o}\0{imagearchive.sha256_file(path)}\n".encode())
    return digest.hexdigest()


@dataclasses.dataclass
class _Machine:
    """What this machine stands in with for the Dockerfile's outside inputs."""

    repo: Path
    cache: Path
    uv: Path
    uv_version: str
    uv_cache: Path
    say: Callable[[str], None]
    # the machine's CA bundle, given to RUNs in case its traffic to registries is proxied
    ca: Path | None = dataclasses.field(default_factory=_machine_ca)

    @classmethod
    def find(cls, repo: Path, cache: Path, say: Callable[[str], None]) -> _Machine:
        uv = Path(sys.executable).parent / "uv"
        if not uv.exists():
            found = shutil.which("uv")
            if not found:
                raise ImageError("uv not found; run scripts/bootstrap.sh")
            uv = Path(found)
        version = subprocess.run(
            [uv, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        uv_cache = Path(
            subprocess.run(
                [uv, "cache", "dir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        uv_cache.mkdir(parents=True, exist_ok=True)
        return cls(repo, cache, uv, version, uv_cache, say)

    def binds(self, run: Run, tools: Mapping[str, str]) -> list[tuple[Path, str]]:
        found: list[tuple[Path, str]] = []
        for mount in run.mounts:
            target = _resolve(run.workdir, mount["target"])
            kind = mount.get("type", "bind")
            if kind == "cache" and target == "/root/.cache/uv":
                found.append((self.uv_cache, target))
            elif kind == "cache":
                folder = self.cache / "run-cache" / hashlib.sha256(target.encode()).hexdigest()[:12]
                folder.mkdir(parents=True, exist_ok=True)
                found.append((folder, target))
            elif kind == "bind" and mount.get("from") in tools and mount["source"] == "/uv":
                found.append((self.uv, target))
            elif kind == "bind" and "from" not in mount:
                found.append((self.repo / mount["source"], target))
            else:
                raise ImageError(f"RUN --mount={mount} is not something this builder provides")
        if self.ca:
            found.append((self.ca, _CA_INSIDE))
        if Path("/etc/resolv.conf").exists():
            found.append((Path("/etc/resolv.conf").resolve(), "/etc/resolv.conf"))
        return found

    def env(self, run: Run) -> dict[str, str]:
        env = {"HOME": "/root", **run.env}
        if self.ca:
            env["SSL_CERT_FILE"] = _CA_INSIDE
        for name in _PROXY_VARIABLES:
            for variant in (name, name.lower()):
                if variant in os.environ:
                    env[variant] = os.environ[variant]
        return env

    def key(self, run: Run, tools: Mapping[str, str]) -> list[str]:
        """What a RUN's mounts bring in: the uv version, the bound context files' content."""
        parts = []
        for mount in run.mounts:
            if mount.get("from") in tools:
                parts.append(self.uv_version)
            elif mount.get("type", "bind") == "bind":
                parts.append(imagearchive.sha256_file(self.repo / mount["source"]))
        return parts


def _userspec(user: str) -> str | None:
    if user in _ROOT_USERS:
        return None
    if not re.fullmatch(r"\d+(:\d+)?", user):
        raise ImageError(f"RUN as USER {user!r}: give a numeric uid[:gid]")
    return user


def _execute(
    runs: Sequence[Run],
    plan_: Plan,
    machine: _Machine,
    *,
    lowers: Sequence[Path],
    upper: Path | None,
    log: Path,
) -> None:
    for run in runs:
        if upper is not None:
            # WORKDIR creates its folder, as Docker does
            (upper / run.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        machine.say(f"RUN {run.script[:100]}")
        rootfs.run(
            ["/bin/sh", "-c", run.script],
            lowers=lowers,
            upper=upper,
            scratch=machine.cache / "scratch",
            env=machine.env(run),
            workdir=run.workdir,
            userspec=_userspec(run.user),
            binds=machine.binds(run, plan_.tools),
            log=log,
        )


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _commit(partial: Path, entry: Path) -> imagearchive.Layer:
    """A finished step's folder takes its place in the cache (a killed build leaves only a
    .partial folder, redone next time)."""
    shutil.rmtree(entry, ignore_errors=True)
    partial.rename(entry)
    layer = imagearchive.Layer.load(entry / "layer.tar")
    if layer is None:
        raise ImageError(f"{entry}: no layer after it was written")
    return layer


def _base(plan_: Plan, machine: _Machine, key: str) -> tuple[Path, imagearchive.Layer, bool]:
    entry = machine.cache / f"base-{key}"
    layer = imagearchive.Layer.load(entry / "layer.tar")
    if layer is not None:
        machine.say("base: cached")
        return entry / "rootfs", layer, True
    partial = _fresh(machine.cache / f"base-{key}.partial")
    root = partial / "rootfs"
    machine.say(f"base: Debian {plan_.suite} with {', '.join(BASE_PACKAGES)} (mmdebstrap)")
    log = partial / "build.log"
    rootfs.debian(
        root,
        suite=plan_.suite,
        variant=BASE_VARIANT,
        include=BASE_PACKAGES,
        dpkg_options=SLIM_DPKG_OPTIONS,
        log=log,
    )
    if not (root / f"usr/bin/python{plan_.python}").exists():
        raise ImageError(f"Debian {plan_.suite} has no python{plan_.python}, the Dockerfile's")
    _execute(plan_.base_runs, plan_, machine, lowers=[root], upper=None, log=log)
    imagearchive.write_layer(root, partial / "layer.tar", skip_contents={"dev", "proc", "sys"})
    return entry / "rootfs", _commit(partial, entry), False


def _overlay_step(
    name: str,
    key: str,
    runs: Sequence[Run],
    plan_: Plan,
    machine: _Machine,
    *,
    lowers: Sequence[Path],
    under: str,
    prepare: Callable[[Path], None] = lambda upper: None,
) -> tuple[Path, imagearchive.Layer, bool]:
    """A layer from `runs` over `lowers`: what they changed (only `under`, when given). The
    upper directory is kept as a lower for the next step."""
    entry = machine.cache / f"{name}-{key}"
    layer = imagearchive.Layer.load(entry / "layer.tar")
    if layer is not None:
        machine.say(f"{name}: cached")
        return entry / "upper", layer, True
    machine.say(f"{name}: building")
    partial = _fresh(machine.cache / f"{name}-{key}.partial")
    upper = _fresh(partial / "upper")
    prepare(upper)
    _execute(runs, plan_, machine, lowers=lowers, upper=upper, log=partial / "build.log")
    skip = set() if under else {"tmp"}  # build-time scratch is never part of the image
    imagearchive.write_layer(upper, partial / "layer.tar", under=under, skip_contents=skip)
    return entry / "upper", _commit(partial, entry), False


def _prune(cache: Path, keep: set[str], *, targets: bool) -> None:
    """Layers this build did not use go (each is up to hundreds of megabytes); other
    targets' own layers stay unless `targets`."""
    kinds = ("base-", "venv-", "app-", *(("target-",) if targets else ()))
    for entry in cache.iterdir():
        if entry.is_dir() and entry.name.startswith(kinds) and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def _history(plan_: Plan) -> list[str]:
    def scripts(runs: Sequence[Run]) -> str:
        return " && ".join(run.script for run in runs)

    lines = [
        f"debian {plan_.suite} ({BASE_VARIANT}: {' '.join(BASE_PACKAGES)}); "
        + scripts(plan_.base_runs),
        scripts(plan_.deps_runs),
        "COPY "
        + " ".join(" ".join(c.sources) for c in plan_.copies)
        + "; "
        + scripts(plan_.app_runs),
    ]
    return lines + ([scripts(plan_.target_runs)] if plan_.target_runs else [])


@dataclasses.dataclass(frozen=True)
class _Layered:
    """One layer of the image, built or found in the cache."""

    name: str  # base, venv, app or target
    key: str
    folder: Path  # its files, a lower of the steps above it
    layer: imagearchive.Layer
    hit: bool  # found in the cache

    @property
    def entry(self) -> str:
        return f"{self.name}-{self.key}"


def _inputs_key(
    below: str, *extra: object, runs: Sequence[Run], plan_: Plan, machine: _Machine
) -> str:
    """A step's cache key: the layer below, what else it takes, its RUNs and what they bind."""
    return _key(below, *extra, _runs_key(runs), [machine.key(run, plan_.tools) for run in runs])


def _base_layer(plan_: Plan, machine: _Machine) -> _Layered:
    key = _key(
        plan_.base_image,
        BASE_VARIANT,
        BASE_PACKAGES,
        SLIM_DPKG_OPTIONS,
        _runs_key(plan_.base_runs),
    )
    root, layer, hit = _base(plan_, machine, key)
    return _Layered("base", key, root, layer, hit)


def _venv_layer(plan_: Plan, machine: _Machine, *, base: _Layered) -> _Layered:
    key = _inputs_key(base.key, runs=plan_.deps_runs, plan_=plan_, machine=machine)
    upper, layer, hit = _overlay_step(
        "venv", key, plan_.deps_runs, plan_, machine, lowers=[base.folder], under=plan_.export
    )
    return _Layered("venv", key, upper, layer, hit)


def _app_layer(plan_: Plan, machine: _Machine, *, repo: Path, below: list[_Layered]) -> _Layered:
    files = context_files(repo, plan_.copies)

    def copy_sources(upper: Path) -> None:
        for path, dest in files:
            inside = upper / dest.lstrip("/")
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, inside)

    key = _inputs_key(
        below[-1].key, _tree_hash(files), runs=plan_.app_runs, plan_=plan_, machine=machine
    )
    upper, layer, hit = _overlay_step(
        "app", key, plan_.app_runs, plan_, machine,
        lowers=[step.folder for step in reversed(below)], under=plan_.export,
        prepare=copy_sources,
    )  # fmt: skip
    return _Layered("app", key, upper, layer, hit)


def _target_layer(plan_: Plan, machine: _Machine, *, below: list[_Layered]) -> _Layered:
    key = _inputs_key(
        below[-1].key, plan_.target, runs=plan_.target_runs, plan_=plan_, machine=machine
    )
    upper, layer, hit = _overlay_step(
        "target", key, plan_.target_runs, plan_, machine,
        lowers=[step.folder for step in reversed(below)], under="",
    )  # fmt: skip
    return _Layered("target", key, upper, layer, hit)


def _layers(plan_: Plan, machine: _Machine, *, repo: Path) -> list[_Layered]:
    """The image's layers, bottom first; the target's own only when it has RUNs."""
    steps = [_base_layer(plan_, machine)]
    steps.append(_venv_layer(plan_, machine, base=steps[0]))
    steps.append(_app_layer(plan_, machine, repo=repo, below=steps))
    if plan_.target_runs:
        steps.append(_target_layer(plan_, machine, below=steps))
    return steps


def build(
    *,
    target: str = "production",
    output: Path | None = None,
    repo: Path = REPO,
    cache: Path | None = None,
    tag: str | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> imagearchive.Built:
    """Builds `target` of the repository's Dockerfile into a docker-save archive."""
    started = time.monotonic()
    rootfs.require_root()
    plan_ = plan(df.read(repo / "Dockerfile"), target)
    tag = tag or TAGS.get(target, f"rhime.local/rhime:{target}")
    output = output or repo / ".rhime" / "images" / f"rhime-{target}.tar"
    cache = cache or repo / ".rhime" / "image-cache"
    with _locked(cache), rootfs.standard_umask():
        machine = _Machine.find(repo, cache, say)
        steps = _layers(plan_, machine, repo=repo)
        layers = [step.layer for step in steps]
        machine.say(f"archive: {output}")
        image_id = imagearchive.write_archive(
            output, layers=layers, config=plan_.config, tags=[tag], history=_history(plan_)
        )
        _prune(cache, {step.entry for step in steps}, targets=bool(plan_.target_runs))
    return imagearchive.Built(
        path=output,
        tag=tag,
        image_id=image_id,
        layers=tuple(layers),
        reused=tuple(step.name for step in steps if step.hit),
        seconds=time.monotonic() - started,
    )


def cli(*, target: str, output: str | None, tag: str | None) -> int:
    """`rhime image build`."""
    try:
        built = build(
            target=target,
            output=Path(output) if output else None,
            tag=tag,
            say=lambda line: print(f"[image] {line}", file=sys.stderr, flush=True),
        )
    except (ImageError, rootfs.RootfsError, df.DockerfileError) as exc:
        print(f"rhime image build: {exc}", file=sys.stderr)
        return 1
    print(built.describe())
    print(f"load it with: ctr -n k8s.io images import {built.path}")
    return 0
