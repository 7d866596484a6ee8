from __future__ import annotations

import asyncio
import random
import sys

import pytest

from rhime.apiclient import Session
from rhime.runtime import local, seed


async def test_seed_makes_a_lively_instance_and_can_run_again(platform: local.Platform) -> None:
    counts = await seed.seed(url=platform.gateway_url, users=6, rng=random.Random(1))
    assert counts["people"] == 6
    assert counts["follows"] > 0
    assert counts["posts"] >= 6
    assert counts["likes"] > 0

    again = await seed.seed(url=platform.gateway_url, users=6, rng=random.Random(1))
    assert again["people"] == 6  # the same people, signed in again

    person = Session(platform.gateway_url)
    try:
        await person.sign_in(login="demo000", password=seed.PASSWORD)
        mine = await person.request("GET", f"/api/posts/users/{person.user_id}")
        assert mine["posts"], "every demo person shared at least one track"
    finally:
        await person.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_the_readme_demo_works_on_the_first_try(fresh_platform: local.Platform) -> None:
    """What the README tells a newcomer: a fresh platform, then `rhime seed` with its defaults
    (40 people from one address), then sign in as demo000. (Its own platform: 40 more people
    would crowd the shared one's recommendations.)"""
    platform = fresh_platform
    seeding = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rhime",
        "seed",
        "--url",
        platform.gateway_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await seeding.communicate()
    assert seeding.returncode == 0, output.decode()
    assert "seeded 40 people" in output.decode()

    person = Session(platform.gateway_url)
    try:
        await person.sign_in(login="demo000", password="Demo!pass1")
        assert person.user_name == "demo000"
    finally:
        await person.close()
