"""`rhime status` against the platform as `rhime up` runs it: it finds every component where
the runtime recorded it and reads their metrics."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from rhime import catalogue
from rhime.runtime import local


def test_status_shows_every_component_of_the_running_platform(platform: local.Platform) -> None:
    command = [sys.executable, "-m", "rhime", "status", "--data", str(platform.data)]
    running = subprocess.Popen(
        [*command, "--once", "--interval", "3"], stdout=subprocess.PIPE, text=True
    )
    # traffic while it measures (it starts, scrapes, waits 3 s, scrapes): signed-out calls
    # the gateway answers itself, refused or, past the anonymous rate limit, limited
    with httpx.Client(base_url=platform.gateway_url) as client:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert client.get("/api/feed").status_code in (401, 429)
            time.sleep(0.05)
    out, _ = running.communicate(timeout=60)
    assert running.returncode == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    names = {p.component.name for p in platform.supervisor.processes}
    assert set(rows) == names
    for name in names:
        kind = catalogue.get(name).kind
        expected = "no" if kind == catalogue.Kind.GRPC else "up"
        assert rows[name][2] == expected, rows[name]
    assert float(rows["gateway"][3]) > 0  # req/s
