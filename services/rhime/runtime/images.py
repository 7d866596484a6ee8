"""Container images written with the standard library, so a cluster never pulls from a registry.

`archive()` writes a docker-save tarball (what `docker save` produces and `ctr images import`
reads): one layer holding the given files, an image config with the entrypoint and
environment, and a manifest naming the image. `pause()` and `hello()` package the two static
programs built by `scripts/bootstrap.sh --cluster`: the pod sandbox (containerd's pause image)
and a tiny HTTP server for smoke tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

PAUSE = "rhime.local/pause:1"
HELLO = "rhime.local/hello:1"
_EPOCH = 0  # fixed timestamps: the same files give the same image digest


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = _EPOCH
    tar.addfile(info, io.BytesIO(data))


def _layer(files: Mapping[str, Path]) -> bytes:
    """An uncompressed layer: each file at its path in the image, with its parent folders."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[str] = set()
        for target in sorted(files):
            parts = target.strip("/").split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = _EPOCH
                    tar.addfile(info)
            source = files[target]
            _add(tar, "/".join(parts), source.read_bytes(), source.stat().st_mode & 0o777)
        # Mount targets the runtime fills in; present so the root filesystem is complete.
        for folder in ("dev", "etc", "proc", "sys", "tmp"):
            if folder not in folders:
                info = tarfile.TarInfo(folder)
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if folder == "tmp" else 0o755
                info.mtime = _EPOCH
                tar.addfile(info)
    return buffer.getvalue()


def archive(
    path: Path,
    *,
    tag: str,
    files: Mapping[str, Path],
    entrypoint: Sequence[str],
    env: Sequence[str] = ("PATH=/",),
    user: str = "",
) -> Path:
    """Write a docker-save tarball at `path` with one layer holding `files` (image path →
    host file) and return `path`."""
    layer = _layer(files)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(entrypoint), "Env": list(env), "User": user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "rhime.runtime.images"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_digest}/layer.tar"]}]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, f"{layer_digest}/layer.tar", layer, 0o644)
        _add(tar, config_name, config_bytes, 0o644)
        _add(tar, "manifest.json", json.dumps(manifest).encode(), 0o644)
    return path


def pause(binary: Path, path: Path) -> Path:
    """The pod sandbox image: the static pause program alone, run as nobody."""
    return archive(
        path, tag=PAUSE, files={"/pause": binary}, entrypoint=["/pause"], user="65535:65535"
    )


def hello(binary: Path, path: Path) -> Path:
    """The smoke-test image: a static HTTP server on :8080 that also fetches URLs
    (`/hello get URL`)."""
    return archive(path, tag=HELLO, files={"/hello": binary}, entrypoint=["/hello"])
