"""Moved to rhime.music.spotify.api, which the recommendation worker shares; this name stays
for the benchmark's imports (bench/refresh.py)."""

from rhime.music.spotify.api import *  # noqa: F403
