from __future__ import annotations

import random

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
