"""Settings of the recommendation components."""

from __future__ import annotations

from pydantic import Field

from rhime.kit.settings import Settings as KitSettings
from rhime.spotify.settings import Settings as SpotifySettings


class Settings(KitSettings):
    """The HTTP service: serves stored recommendations."""

    page_size: int = Field(default=10, ge=1, le=50)
    # ask user-graph-view who the reader follows, to hide them (False: no such filter)
    use_graph_view: bool = True


class WorkerSettings(SpotifySettings):
    """The rq worker: fetches tastes from Spotify and computes recommendations."""

    use_graph_view: bool = True
    # intervals between rq's retries of a failed job, in seconds
    job_retry_intervals: tuple[int, ...] = (30, 120, 600)
    job_timeout_seconds: int = Field(default=1800, ge=10)


class RefreshSettings(KitSettings):
    """The weekly music-refresh CronJob: enqueues the batches."""

    refresh_batch: int = Field(default=20, ge=1, le=1000)
    job_retry_intervals: tuple[int, ...] = (30, 120, 600)
    job_timeout_seconds: int = Field(default=1800, ge=10)
