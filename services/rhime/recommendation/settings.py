"""Settings of the recommendation components."""

from __future__ import annotations

from pydantic import Field

from rhime.kit.settings import Settings as KitSettings
from rhime.music.spotify.settings import Settings as SpotifySettings


class Settings(KitSettings):
    """The HTTP service: serves stored recommendations."""

    page_size: int = Field(default=10, ge=1, le=50, description="recommendations per page")
    dismiss_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description='days a recommendation dismissed with "Not now" stays hidden',
    )
    use_graph_view: bool = Field(
        default=True,
        description="ask user-graph-view whom the reader follows, to hide them (false: no "
        "such filter)",
    )


class WorkerSettings(SpotifySettings):
    """The rq worker: fetches tastes from Spotify and computes recommendations."""

    use_graph_view: bool = Field(
        default=True,
        description="ask user-graph-view whom a user follows, to leave them out of the "
        "computed recommendations (false: no such filter)",
    )
    job_retry_intervals: tuple[int, ...] = Field(
        default=(30, 120, 600),
        description="unused by the worker: a job keeps the retries it was enqueued with "
        "(JSON list of seconds)",
    )
    job_timeout_seconds: int = Field(
        default=1800,
        ge=10,
        description="unused by the worker: a job keeps the timeout it was enqueued with",
    )
    queue_watch_seconds: float = Field(
        default=15.0,
        gt=0,
        description="seconds between readings of the job queue's depth for `rhime_job_queue_depth`",
    )


class RefreshSettings(KitSettings):
    """The weekly music-refresh CronJob: enqueues the batches."""

    refresh_batch: int = Field(
        default=20, ge=1, le=1000, description="connected users per enqueued refresh job"
    )
    job_retry_intervals: tuple[int, ...] = Field(
        default=(30, 120, 600),
        description="seconds between retries of a failed refresh job (JSON list; one retry "
        "per entry)",
    )
    job_timeout_seconds: int = Field(
        default=1800, ge=10, description="seconds a refresh job may run before rq stops it"
    )
