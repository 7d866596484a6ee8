"""The image installs only the declared runtime dependencies (`uv sync --no-dev`: the
project's dependencies and theirs, as uv.lock resolves them). Every component and the
operator must import with nothing else: here each entrypoint is imported in a fresh
interpreter in which every other installed distribution (the dev group's) is hidden."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from rhime import catalogue

_IMPORT_ALL = """
import importlib, importlib.abc, json, sys

hidden = set(json.loads(sys.argv[1]))


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"{name} is not a runtime dependency", name=name)
        return None


sys.meta_path.insert(0, Hide())
for module in json.loads(sys.argv[2]):
    importlib.import_module(module)
print("ok")
"""


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def runtime_closure(lock: dict[str, Any]) -> set[str]:
    """The distributions `uv sync --no-dev` installs: the project's dependencies, with their
    extras, and theirs (markers ignored: a superset)."""
    packages = {p["name"]: p for p in lock["package"]}
    todo, seen = ["rhime"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in packages[name].get("dependencies", []):
            todo.append(dep["name"])
            for extra in dep.get("extra", []):
                optional = packages[dep["name"]].get("optional-dependencies", {})
                todo.extend(d["name"] for d in optional.get(extra, []))
    return seen


def test_components_and_operator_import_with_only_the_runtime_dependencies(repo: Path) -> None:
    closure = runtime_closure(tomllib.loads((repo / "uv.lock").read_text()))
    assert "spotipy" in closure
    assert "httpx" not in closure  # a test and tool dependency only
    hidden = sorted(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if not any(_name(d) in closure for d in distributions)
    )
    assert "httpx" in hidden
    assert "pytest" in hidden
    modules = [c.entrypoint.partition(":")[0] for c in catalogue.COMPONENTS]
    modules += ["rhime_operator.handlers", "rhime.fakespotify.app", "rhime.cli"]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps(hidden), json.dumps(modules)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
