"""The Dockerfile read with plain text matching, independently of rhime.runtime.dockerfile, so
the image tests compare the builder with the file itself."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKER_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> (instruction, rest) in order, continuation lines joined."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in joined.splitlines():
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            current = found.setdefault(rest.split()[-1], [])
            found[rest.split()[-1] + ".from"] = [("FROM", rest.split()[0])]
        elif current is not None:
            current.append((word, rest.strip()))
    return found


STAGES = stages((REPO / "Dockerfile").read_text())


def final(target: str, instruction: str) -> str:
    """The last value of `instruction` over the runtime stage and the target's."""
    values = [rest for word, rest in STAGES["runtime"] + STAGES[target] if word == instruction]
    return values[-1]


def env_of(stage_names: list[str]) -> dict[str, str]:
    env = {"PATH": DOCKER_DEFAULT_PATH}
    for name in stage_names:
        for word, rest in STAGES[name]:
            if word == "ENV":
                for pair in shlex.split(rest):
                    key, _, value = pair.partition("=")
                    env[key] = value.replace("$PATH", env["PATH"])
    return env


def words(command: str) -> str:
    return " ".join(command.split())


def runs(stage: str) -> list[str]:
    """RUN commands with their --mount flags removed, spaces collapsed."""
    return [words(re.sub(r"^(--\S+\s+)+", "", r)) for w, r in STAGES[stage] if w == "RUN"]
