"""The Dockerfile and the builder without Docker stay in step: the Dockerfile is read on its
own (tests/image/dockerfacts.py: plain text matching, not rhime.runtime.dockerfile) and the
builder's plan must use the same values and commands. test_image_build.py checks the built
image against it too."""

from __future__ import annotations

import json
import re

import pytest

from rhime.runtime import dockerfile, image
from tests.image.dockerfacts import REPO, STAGES, env_of, final, runs, words


@pytest.mark.parametrize("target", ["production", "dev"])
def test_image_settings_are_the_dockerfiles(target: str) -> None:
    plan = image.plan(dockerfile.read(REPO / "Dockerfile"), target)
    assert plan.config["User"] == final(target, "USER")
    assert plan.config["WorkingDir"] == final(target, "WORKDIR")
    assert plan.config["Cmd"] == json.loads(final(target, "CMD"))
    exposed = {f"{port}/tcp" for port in final(target, "EXPOSE").split()}
    assert set(plan.config["ExposedPorts"]) == exposed
    env = dict(entry.split("=", 1) for entry in plan.config["Env"])
    for key, value in env_of(["runtime", target]).items():
        assert env[key] == value, key


def test_copied_paths_and_uv_commands_are_the_dockerfiles() -> None:
    plan = image.plan(dockerfile.read(REPO / "Dockerfile"), "production")
    copies = [rest.split() for word, rest in STAGES["build"] if word == "COPY" and "--" not in rest]
    assert [list(c.sources) for c in plan.copies] == [c[:-1] for c in copies]
    build_runs = runs("build")
    assert [words(r.script) for r in (*plan.deps_runs, *plan.app_runs)] == build_runs
    uv_syncs = [m for run in build_runs for m in re.findall(r"uv sync[^&]*", run)]
    assert any("--no-install-project" in s for s in uv_syncs)
    assert all("--frozen" in s and "--no-dev" in s for s in uv_syncs)
    # dependencies before the sources: the venv layer does not change with the code
    assert all("--no-install-project" in r.script for r in plan.deps_runs)
    build_env = env_of(["build"])
    for run in (*plan.deps_runs, *plan.app_runs):
        assert {k: run.env[k] for k in build_env} == build_env
        assert run.workdir == next(rest for word, rest in STAGES["build"] if word == "WORKDIR")


@pytest.mark.parametrize("target", ["production", "dev"])
def test_user_creation_and_target_steps_are_the_dockerfiles(target: str) -> None:
    plan = image.plan(dockerfile.read(REPO / "Dockerfile"), target)
    assert [words(r.script) for r in plan.base_runs] == runs("runtime")
    assert [words(r.script) for r in plan.target_runs] == runs(target)
    assert re.search(r"useradd .*--uid 10001", plan.base_runs[0].script)


def test_base_is_debian_python_of_the_dockerfiles_version() -> None:
    plan = image.plan(dockerfile.read(REPO / "Dockerfile"), "production")
    python_image = STAGES["runtime.from"][0][1]
    arg = re.search(r"ARG PYTHON_IMAGE=(\S+)", (REPO / "Dockerfile").read_text())
    assert arg
    assert python_image == "${PYTHON_IMAGE}"
    assert arg.group(1) == f"python:{plan.python}-slim-{plan.suite}"


def test_context_is_what_dockerignore_lets_in() -> None:
    plan = image.plan(dockerfile.read(REPO / "Dockerfile"), "production")
    inside = {dest for _, dest in image.context_files(REPO, plan.copies)}
    assert {"/app/pyproject.toml", "/app/uv.lock", "/app/README.md"} <= inside
    assert "/app/services/rhime/cli.py" in inside
    assert "/app/operator/rhime_operator/handlers.py" in inside
    assert not [p for p in inside if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in inside if re.search(r"_pb2(_grpc)?\.pyi?$", p)]
    assert all(
        p.startswith(("/app/services/", "/app/operator/"))
        for p in inside - {"/app/pyproject.toml", "/app/uv.lock", "/app/README.md"}
    )


BASE = """\
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
WORKDIR /app
COPY services ./services
FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /app /app
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("ADD https://example.invalid/x /x", "ADD"),
        ("HEALTHCHECK CMD true", "HEALTHCHECK"),
        ("RUN --network=none true", "RUN"),
        ("COPY --chown=1:1 README.md /x", "COPY"),
    ],
)
def test_plan_refuses_what_it_cannot_carry_out(extra: str, message: str) -> None:
    recipe = dockerfile.parse(BASE + extra + "\n")
    with pytest.raises(image.ImageError, match=message):
        image.plan(recipe, "runtime")


def test_plan_refuses_another_base() -> None:
    recipe = dockerfile.parse(BASE.replace("3.11-slim-bookworm", "3.12-alpine"))
    with pytest.raises(image.ImageError, match=r"python:X\.Y-slim-SUITE"):
        image.plan(recipe, "runtime")


def test_parser_joins_lines_and_reads_env_and_mounts() -> None:
    recipe = dockerfile.parse(
        "FROM scratch AS a\n"
        "# a comment\n"
        'ENV A=1 \\\n    B="two words" \\\n    C=$A:${B}\n'
        "RUN --mount=type=cache,target=/c \\\n"
        "    # inside a continuation\n"
        "    echo one \\\n && echo two\n"
        'CMD ["x", "--y"]\n'
    )
    env, run, cmd = recipe.stage("a").instructions
    pairs = dict(dockerfile.env_pairs(env.args))
    assert pairs == {"A": "1", "B": "two words", "C": "$A:${B}"}
    assert dockerfile.expand(pairs["C"], pairs) == "1:two words"
    assert dockerfile.mounts(run) == [{"type": "cache", "target": "/c"}]
    assert run.args == "echo one && echo two"
    assert dockerfile.exec_form(cmd.args) == ["x", "--y"]
    assert dockerfile.exec_form("echo hi") == ["/bin/sh", "-c", "echo hi"]


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("pyproject.toml", False),
        ("services/rhime/cli.py", False),
        ("services/rhime/__pycache__/cli.cpython-311.pyc", True),
        ("services/rhime/graphview/proto/health_pb2.py", True),
        ("services/rhime/graphview/proto/__init__.py", False),
        ("tests/conftest.py", True),
        ("Makefile", True),
        (".venv/bin/python", True),
    ],
)
def test_dockerignore_rules(path: str, excluded: bool) -> None:
    ignore = dockerfile.Ignore.read(REPO)
    assert ignore.excluded(path) is excluded
