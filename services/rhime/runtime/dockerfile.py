"""A reader for the parts of Dockerfile and .dockerignore syntax the project's recipe uses.

Only what `rhime.runtime.image` needs to follow the recipe: stages, instructions with their
flags, ENV and ARG values, exec-form CMD, and the build context's ignore rules. Anything it
cannot read it refuses, rather than guessing.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path


class DockerfileError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    flags: tuple[tuple[str, str], ...]
    args: str
    line: int

    def flag(self, name: str) -> str | None:
        values = self.flag_values(name)
        return values[-1] if values else None

    def flag_values(self, name: str) -> list[str]:
        return [value for key, value in self.flags if key == name]


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: tuple[Instruction, ...]


@dataclasses.dataclass(frozen=True)
class Dockerfile:
    args: Mapping[str, str]
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise DockerfileError(f"no stage named {name!r}")

    def has_stage(self, name: str) -> bool:
        return any(stage.name == name for stage in self.stages)

    def chain(self, target: str) -> list[Stage]:
        """`target` and the stages it is built FROM, the first one based on an outside image."""
        stages = [self.stage(target)]
        while self.has_stage(stages[0].base):
            stages.insert(0, self.stage(stages[0].base))
        return stages


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$NAME` and `${NAME}` from `env`; unknown names become empty, as in Docker."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instructions with their continuation lines joined; comment lines dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        yield start, " ".join(part.strip() for part in pending if part.strip())
        pending = []
    if pending:
        yield start, " ".join(part.strip() for part in pending if part.strip())


def _split_flags(rest: str) -> tuple[tuple[tuple[str, str], ...], str]:
    flags = []
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags.append((name, value))
        rest = rest.lstrip()
    return tuple(flags), rest


def parse(text: str) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[tuple[str, str, list[Instruction]]] = []
    current: list[Instruction] | None = None
    for line, logical in _logical_lines(text):
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        flags, rest = _split_flags(rest.strip())
        instruction = Instruction(keyword=keyword, flags=flags, args=rest, line=line)
        if keyword == "FROM":
            words = rest.split()
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2]
            elif len(words) == 1:
                name = str(len(stages))
            else:
                raise DockerfileError(f"line {line}: cannot read FROM {rest!r}")
            current = []
            stages.append((name, expand(words[0], args), current))
            continue
        if current is None:
            if keyword != "ARG":
                raise DockerfileError(f"line {line}: {keyword} before the first FROM")
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
            continue
        current.append(instruction)
    return Dockerfile(
        args=args,
        stages=tuple(Stage(name=n, base=b, instructions=tuple(i)) for n, b, i in stages),
    )


def read(path: Path) -> Dockerfile:
    return parse(path.read_text())


def env_pairs(args: str) -> list[tuple[str, str]]:
    """ENV's `K=V K2="V 2"` form (and the old `K V` form)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"cannot read ENV {args!r}")
        pairs.append((key, value))
    return pairs


def exec_form(args: str) -> list[str]:
    """CMD and ENTRYPOINT: the JSON form as is, the shell form run by /bin/sh -c."""
    if args.lstrip().startswith("["):
        value = json.loads(args)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"cannot read {args!r}")
        return list(value)
    return ["/bin/sh", "-c", args]


def mounts(instruction: Instruction) -> list[dict[str, str]]:
    """RUN --mount=type=cache,target=X as {"type": "cache", "target": "X"}."""
    found = []
    for value in instruction.flag_values("mount"):
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        found.append(fields)
    return found


@dataclasses.dataclass(frozen=True)
class Ignore:
    """.dockerignore rules: the last pattern that matches a path or one of its parents wins."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def parse(cls, text: str) -> Ignore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line[1:].strip() if keep else line
            rules.append((keep, _pattern(pattern.strip("/"))))
        return cls(rules=tuple(rules))

    @classmethod
    def read(cls, context: Path) -> Ignore:
        path = context / ".dockerignore"
        return cls.parse(path.read_text()) if path.exists() else cls(rules=())

    def excluded(self, relative: str) -> bool:
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for keep, pattern in self.rules:
            if any(pattern.fullmatch(prefix) for prefix in prefixes):
                excluded = not keep
        return excluded


def _pattern(glob: str) -> re.Pattern[str]:
    """Docker's globs: `**` spans whole names, `*` and `?` stay within one name."""
    parts = glob.split("/")
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _name_pattern(part) + ("" if last else "/")
    return re.compile(regex)


def _name_pattern(glob: str) -> str:
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
