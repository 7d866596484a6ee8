"""Container images as `docker save` archives, written with the standard library.

An archive holds each layer as an uncompressed tar, the image config (JSON) and manifest.json
naming the config, the layers in order and the image's tags: what `docker load` and
`ctr -n k8s.io images import` read. Layers come from directory trees; a tree that is an overlay
upper directory has its whiteouts (0/0 character devices, opaque directories) written as
`.wh.` entries, as in any image layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import tarfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# Configs carry this date, so the same layers and settings give the same image id.
CREATED = "1970-01-01T00:00:00Z"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclasses.dataclass(frozen=True)
class Layer:
    path: Path
    diff_id: str
    size: int

    def save(self) -> None:
        """Records the digest beside the tar, so a cached layer is not hashed again."""
        meta = {"diff_id": self.diff_id, "size": self.size}
        _sidecar(self.path).write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path) -> Layer | None:
        try:
            meta = json.loads(_sidecar(path).read_text())
        except (OSError, ValueError):
            return None
        if not path.is_file() or path.stat().st_size != meta["size"]:
            return None
        return cls(path=path, diff_id=str(meta["diff_id"]), size=int(meta["size"]))


@dataclasses.dataclass(frozen=True)
class Built:
    """An archive written by a builder."""

    path: Path
    tag: str
    image_id: str
    layers: tuple[Layer, ...]
    reused: tuple[str, ...]  # the layers taken from the builder's cache
    seconds: float

    def describe(self) -> str:
        size = self.path.stat().st_size / 1e6
        cached = f" (cached layers: {', '.join(self.reused)})" if self.reused else ""
        return (
            f"{self.tag}  {self.path}  {size:.0f} MB  image {self.image_id[:12]}  "
            f"built in {self.seconds:.1f}s{cached}"
        )


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _entries(tree: Path, under: str, skip_contents: Collection[str]) -> Iterator[str]:
    """Paths relative to `tree`, parents before children, sorted; `under` limits the walk to
    one subtree (its parent directories included)."""
    parts = [p for p in under.strip("/").split("/") if p]
    for i in range(len(parts) - 1):
        yield "/".join(parts[: i + 1])
    start = "/".join(parts)
    stack = [start] if start else sorted(os.listdir(tree), reverse=True)
    while stack:
        rel = stack.pop()
        yield rel
        path = tree / rel
        if path.is_dir() and not path.is_symlink() and rel not in skip_contents:
            stack.extend(f"{rel}/{child}" for child in sorted(os.listdir(path), reverse=True))


def _opaque(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    return False


def write_layer(
    tree: Path, dest: Path, *, under: str = "", skip_contents: Collection[str] = ()
) -> Layer:
    """A layer tar of `tree` (or its `under` subtree) at `dest`. `skip_contents` are
    directories written empty (dev, proc: the runtime mounts its own)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(dest.name + ".partial")
    with tarfile.open(staging, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in _entries(tree, under, skip_contents):
            path = tree / rel
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                head, _, name = rel.rpartition("/")
                whiteout = tarfile.TarInfo(f"{head}/{WHITEOUT}{name}" if head else WHITEOUT + name)
                tar.addfile(whiteout)
                continue
            info = tar.gettarinfo(str(path), arcname=rel)
            if info is None:  # sockets are not part of an image
                continue
            info.uname = info.gname = ""
            # whole seconds: no PAX header per file, and .pyc files check only those
            info.mtime = int(info.mtime)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and _opaque(path):
                tar.addfile(tarfile.TarInfo(f"{rel}/{OPAQUE}"))
    layer = Layer(path=dest, diff_id="sha256:" + sha256_file(staging), size=staging.stat().st_size)
    os.replace(staging, dest)
    layer.save()
    return layer


def image_config(
    *, layers: Sequence[Layer], config: Mapping[str, Any], history: Sequence[str]
) -> bytes:
    """The image config: the container settings and the layers' digests, one history line
    per layer."""
    document = {
        "architecture": _ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": CREATED,
        "config": dict(config),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": line} for line in history],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(
    output: Path,
    *,
    layers: Sequence[Layer],
    config: Mapping[str, Any],
    tags: Sequence[str],
    history: Sequence[str],
) -> str:
    """Writes the archive (atomically); returns the image id, the config's sha256."""
    if len(history) != len(layers):
        raise ValueError("one history line per layer")
    blob = image_config(layers=layers, config=config, history=history)
    image_id = hashlib.sha256(blob).hexdigest()
    layer_names = [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers]
    manifest = [{"Config": f"{image_id}.json", "RepoTags": list(tags), "Layers": layer_names}]
    repositories: dict[str, dict[str, str]] = {}
    for tag in tags:
        name, _, version = tag.rpartition(":")
        repositories.setdefault(name, {})[version] = layer_names[-1].split("/")[0]
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(output.name + ".partial")
    with tarfile.open(staging, "w", format=tarfile.PAX_FORMAT) as tar:
        for layer, name in zip(layers, layer_names, strict=True):
            folder = tarfile.TarInfo(name.split("/")[0])
            folder.type = tarfile.DIRTYPE
            folder.mode = 0o755
            tar.addfile(folder)
            info = tarfile.TarInfo(name)
            info.size = layer.size
            info.mode = 0o644
            with open(layer.path, "rb") as f:
                tar.addfile(info, f)
        _add_bytes(tar, f"{image_id}.json", blob)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        _add_bytes(tar, "repositories", json.dumps(repositories).encode())
    os.replace(staging, output)
    return image_id


def _member_json(tar: tarfile.TarFile, name: str) -> Any:
    f = tar.extractfile(name)
    if f is None:
        raise ValueError(f"{name} is not a file")
    return json.load(f)


def read(archive: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The archive's manifest entry and image config."""
    with tarfile.open(archive) as tar:
        manifest = _member_json(tar, "manifest.json")[0]
        return manifest, _member_json(tar, manifest["Config"])


@contextlib.contextmanager
def open_layer(archive: Path, index: int) -> Iterator[tarfile.TarFile]:
    """One layer of the archive, as a tar to read."""
    with tarfile.open(archive) as tar:
        manifest = _member_json(tar, "manifest.json")[0]
        f = tar.extractfile(manifest["Layers"][index])
        if f is None:
            raise ValueError(f"{archive}: layer {index} is not a file")
        with tarfile.open(fileobj=f) as layer:
            yield layer


def layer_names(archive: Path, index: int) -> list[str]:
    with open_layer(archive, index) as layer:
        return layer.getnames()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _apply(layer: IO[bytes], dest: Path) -> None:
    with tarfile.open(fileobj=layer, mode="r|") as tar:
        for member in tar:
            path = dest / member.name
            head, name = os.path.split(member.name)
            if name == OPAQUE:
                for child in (dest / head).iterdir():
                    _remove(child)
                continue
            if name.startswith(WHITEOUT):
                _remove(dest / head / name.removeprefix(WHITEOUT))
                continue
            if not (member.isdir() and path.is_dir()):
                _remove(path)
            tar.extract(member, dest, filter="fully_trusted")


def unpack(archive: Path, dest: Path) -> dict[str, Any]:
    """The image's filesystem in `dest` (as root, owners kept); returns the image config."""
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # the image's "/", which every user must be able to enter
    with tarfile.open(archive) as tar:
        manifest = _member_json(tar, "manifest.json")[0]
        for name in manifest["Layers"]:
            f = tar.extractfile(name)
            assert f is not None
            _apply(f, dest)
        config: dict[str, Any] = _member_json(tar, manifest["Config"])
    return config
