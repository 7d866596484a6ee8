"""Image tests: the production archive is built once per session (with the repository's
layer cache, so it is quick when a build already ran) and unpacked for tests/image/chroot.py
to run its programs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rhime.runtime import image, imagearchive


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied after the test: archives and unpacked images are large."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[imagearchive.Built]:
    folder = tmp_path_factory.mktemp("image")
    yield image.build(target="production", output=folder / "rhime-production.tar")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def production_root(
    production: imagearchive.Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("production-root")
    yield root, imagearchive.unpack(production.path, root)
    shutil.rmtree(root, ignore_errors=True)
