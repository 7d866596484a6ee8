"""Moved to rhime.music.spotify.tokens, which the recommendation worker shares; this name stays
for the benchmark's imports (bench/refresh.py)."""

from rhime.music.spotify.tokens import *  # noqa: F403
