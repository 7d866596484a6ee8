"""Root filesystems for images built without a container engine: a Debian base from
`mmdebstrap`, and commands run inside a root filesystem with `chroot`.

A command runs in a private mount namespace (`unshare --mount`), so its mounts (an overlay of
read-only layers under a writable upper directory, /proc, /dev, caches) vanish when it ends,
even if the build is killed. What it changed is then exactly the upper directory, as in a
container engine's layer. Everything here needs root.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


class RootfsError(RuntimeError):
    pass


def require_root() -> None:
    if os.geteuid() != 0:
        raise RootfsError("building images needs root (mmdebstrap, chroot and mounts)")


@contextlib.contextmanager
def standard_umask() -> Iterator[None]:
    """Files and folders made while building get the modes Docker's RUN and COPY give them
    (0755 folders, 0644 files), whatever the caller's umask."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def ensure_mmdebstrap() -> str:
    """mmdebstrap from Debian, installed when missing (as bootstrap does for redis-server)."""
    found = shutil.which("mmdebstrap")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "mmdebstrap"]):
        subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("mmdebstrap")
    if not found:
        raise RootfsError("mmdebstrap is not installed and apt-get could not install it")
    return found


def debian(
    dest: Path,
    *,
    suite: str,
    variant: str,
    include: Sequence[str],
    dpkg_options: Sequence[str] = (),
    log: Path,
) -> None:
    """A Debian root filesystem in `dest` (which must not exist yet)."""
    command = [
        ensure_mmdebstrap(),
        "--mode=root",
        f"--variant={variant}",
        *(f"--include={name}" for name in include),
        *(f"--dpkgopt={option}" for option in dpkg_options),
        suite,
        str(dest),
    ]
    _run_logged(command, log=log)
    # mmdebstrap copies these from the machine it ran on; a container runtime provides its own
    for name in ("etc/resolv.conf", "etc/hostname"):
        (dest / name).unlink(missing_ok=True)


def _run_logged(command: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(("$ " + shlex.join(command) + "\n").encode())
        out.flush()
        result = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise RootfsError(f"{command[0]} failed ({result.returncode}); {log}:\n" + "\n".join(tail))


def _mount_point(
    writable: Path, lowers: Sequence[Path], target: str, *, is_file: bool
) -> list[Path]:
    """Create the mount point of `target` in `writable`; returns what was created, deepest
    first, so it can be removed after. A folder that a lower layer has keeps that layer's
    owner and mode, so the merged view does not change where the command ran."""
    created: list[Path] = []
    rel = target.strip("/")
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        path = writable.joinpath(*parts[:depth])
        if path.exists() or path.is_symlink():
            continue
        if depth == len(parts) and is_file:
            path.touch()
        else:
            below = [low.joinpath(*parts[:depth]) for low in lowers]
            path.mkdir()
            for folder in (b for b in below if b.is_dir() and b != path):
                st = folder.stat()
                os.chown(path, st.st_uid, st.st_gid)
                path.chmod(st.st_mode & 0o7777)
                break
        created.append(path)
    return list(reversed(created))


def _roots(*, lowers: Sequence[Path], upper: Path | None, scratch: Path) -> tuple[Path, Path]:
    """(the root the command is chrooted into, the directory its changes go to)."""
    if upper is None:
        if len(lowers) != 1:
            raise RootfsError("without an upper directory, give exactly one root")
        return lowers[0], lowers[0]
    root = scratch / "merged"
    work = scratch / "work"
    for path in (root, work):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    return root, upper


def _check_overlay_paths(*, lowers: Sequence[Path], upper: Path | None) -> None:
    # overlayfs reads ':' and ',' in its options as separators
    for path in (*lowers, *(p for p in (upper,) if p)):
        if any(char in str(path) for char in ":,"):
            raise RootfsError(f"overlay paths may not contain ':' or ',': {path}")


def _mounts(
    *,
    lowers: Sequence[Path],
    upper: Path | None,
    scratch: Path,
    root: Path,
    binds: Sequence[tuple[Path, str]],
) -> list[str]:
    """The shell lines that mount the overlay (when there is an upper directory), /proc,
    /dev and the binds under `root`."""
    lines = []
    if upper is not None:
        options = ",".join(
            [
                "lowerdir=" + ":".join(str(p) for p in lowers),
                f"upperdir={upper}",
                f"workdir={scratch / 'work'}",
                # whole-file copy-up and plain renames: the upper directory alone is the layer
                "redirect_dir=off",
                "metacopy=off",
            ]
        )
        lines.append(f"mount -t overlay overlay -o {shlex.quote(options)} {shlex.quote(str(root))}")
    lines.append(f"mount -t proc proc {shlex.quote(str(root / 'proc'))}")
    lines.append(f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}")
    for source, target in binds:
        inside = root / target.lstrip("/")
        lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(inside))}")
    return lines


def _chrooted(
    argv: Sequence[str],
    *,
    root: Path,
    env: Mapping[str, str],
    workdir: str,
    userspec: str | None,
) -> list[str]:
    """`argv` run in `root` from `workdir`, with exactly `env` and as `userspec`."""
    chroot = ["chroot", *([f"--userspec={userspec}"] if userspec else []), str(root)]
    inner = ["/bin/sh", "-c", f"cd {shlex.quote(workdir)} && exec " + shlex.join(argv)]
    return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *chroot, *inner]


def _remove_mount_points(created: Sequence[Path]) -> None:
    for path in created:
        # a mount point the command wrote beside stays; the layers take only what they own
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()


def run(
    argv: Sequence[str],
    *,
    lowers: Sequence[Path],
    upper: Path | None,
    scratch: Path,
    env: Mapping[str, str],
    workdir: str = "/",
    userspec: str | None = None,
    binds: Sequence[tuple[Path, str]] = (),
    log: Path,
) -> None:
    """Run `argv` chrooted into `lowers` (top first) with changes going to `upper`; without
    `upper` the single lower directory is changed in place. `binds` are (host path, path
    inside) pairs visible only to this command."""
    require_root()
    root, writable = _roots(lowers=lowers, upper=upper, scratch=scratch)
    _check_overlay_paths(lowers=lowers, upper=upper)
    created: list[Path] = []
    for source, target in binds:
        created += _mount_point(writable, lowers, target, is_file=source.is_file())
    script = [
        "set -e",
        "umask 022",
        *_mounts(lowers=lowers, upper=upper, scratch=scratch, root=root, binds=binds),
        "exec "
        + shlex.join(_chrooted(argv, root=root, env=env, workdir=workdir, userspec=userspec)),
    ]
    try:
        _run_logged(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(script)],
            log=log,
        )
    finally:
        _remove_mount_points(created)
