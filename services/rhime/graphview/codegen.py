"""The gRPC modules of user-graph-view, generated from the `.proto` files beside this module
into `rhime.graphview.proto` (not committed; the output is deterministic).

`python -m rhime.graphview.codegen` writes them; the bootstrap and the Dockerfile run it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.resources
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent / "proto"  # where the modules go
SOURCES = (HERE.parent / "graphview.proto", HERE.parent / "health.proto")
# Generated imports are absolute (`from rhime.graphview.proto import x_pb2`), so protoc sees
# the sources under the package path they are generated into.
_PACKAGE_PATH = Path("rhime", "graphview", "proto")


def outputs(source: Path) -> list[Path]:
    stem = source.stem
    names = [f"{stem}_pb2.py", f"{stem}_pb2_grpc.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.pyi"]
    return [HERE / name for name in names]


def stale() -> bool:
    newest = max(p.stat().st_mtime for p in (*SOURCES, Path(__file__)))
    for source in SOURCES:
        for target in outputs(source)[:2]:  # the .pyi stubs are optional
            if not target.exists() or target.stat().st_mtime < newest:
                return True
    return False


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One generator at a time across processes (test workers, replicas on one volume)."""
    with open(Path(tempfile.gettempdir(), "rhime-graphview-proto.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _plugins() -> list[str]:
    """mypy-protobuf's plugins write typed stubs when they are installed (a dev dependency)."""
    args = []
    for name, flag in (("protoc-gen-mypy", "mypy_out"), ("protoc-gen-mypy_grpc", "mypy_grpc_out")):
        binary = Path(sys.executable).parent / name
        found = str(binary) if binary.exists() else shutil.which(name)
        if found:
            args += [f"--plugin={name}={found}", f"--{flag}={{out}}"]
    return args


def generate(out: Path) -> list[Path]:
    """Compile the sources into `out`; returns the modules written there."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        compiled = Path(tmp, "out")
        (src / _PACKAGE_PATH).mkdir(parents=True)
        compiled.mkdir()
        for source in SOURCES:
            shutil.copyfile(source, src / _PACKAGE_PATH / source.name)
        include = importlib.resources.files("grpc_tools") / "_proto"
        args = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{include}",
            f"--python_out={compiled}",
            f"--grpc_python_out={compiled}",
            *(a.format(out=compiled) for a in _plugins()),
            *(str(_PACKAGE_PATH / s.name) for s in SOURCES),
        ]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"protoc failed: {result.stderr.strip()}")
        written = []
        for generated in sorted((compiled / _PACKAGE_PATH).iterdir()):
            target = out / generated.name
            staging = target.with_name(f".{generated.name}.tmp")
            shutil.copyfile(generated, staging)
            os.replace(staging, target)  # readers never see a half-written module
            written.append(target)
        return written


def build(*, force: bool = False) -> list[Path]:
    """Regenerate the modules if stale (or `force`); returns the files written."""
    with _locked():
        if not force and not stale():
            return []
        return generate(HERE)


if __name__ == "__main__":
    for path in build(force=True):
        print(path)
