from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rhime.kit import logs


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure(component="spotify", level="DEBUG", json=True)
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("spotipy").setLevel(logging.NOTSET)


@pytest.mark.usefixtures("configured")
def test_spotipy_logs_neither_retried_errors_nor_request_headers() -> None:
    """Even at DEBUG: spotipy's debug lines carry the bearer token and client credentials."""
    assert logging.getLogger("rhime.spotify.api").isEnabledFor(logging.DEBUG)
    for name in ("spotipy.client", "spotipy.oauth2"):
        assert not logging.getLogger(name).isEnabledFor(logging.ERROR)
