"""Programs run inside an unpacked image, as Kubernetes would start them, with chroot: the
image's user, working folder and environment (no container engine here)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rhime.runtime import servers

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="building images needs root")


def container_argv(config: dict[str, Any], args: Sequence[str] = ()) -> list[str]:
    """What Kubernetes runs: the image's entrypoint, then `args` (or else the image's CMD)."""
    settings = config["config"]
    return [*(settings.get("Entrypoint") or []), *(args or settings.get("Cmd") or [])]


def start(
    root: Path, config: dict[str, Any], argv: Sequence[str], **popen: Any
) -> subprocess.Popen[bytes]:
    """`argv` inside the unpacked image at `root`, as its user, in its folder, with its env."""
    settings = config["config"]
    env = dict(entry.split("=", 1) for entry in settings.get("Env", []))
    uid, _, gid = settings.get("User", "0").partition(":")

    def enter() -> None:
        servers.die_with_parent()  # before chroot: it loads the machine's libc
        os.chroot(root)
        os.chdir(settings.get("WorkingDir") or "/")
        os.setgroups([])
        os.setgid(int(gid or uid))
        os.setuid(int(uid))

    return subprocess.Popen(list(argv), env=env, preexec_fn=enter, **popen)


def run(
    root: Path, config: dict[str, Any], argv: Sequence[str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    process = start(root, config, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), None)
