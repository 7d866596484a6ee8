import dataclasses

import pytest

from rhime.music import listeners as ls


@pytest.fixture(scope="module")
def population() -> ls.Listeners:
    return ls.generate(ls.ListenerSpec())


def test_the_population_matches_real_listeners_within_tolerance(population: ls.Listeners) -> None:
    rows = ls.check(ls.measure_statistics(population))

    assert [t.name for t, _, _ in rows] == [t.name for t in ls.TARGETS]
    assert [(t.name, round(v, 3)) for t, v, ok in rows if not ok] == []


def test_friendship_is_symmetric_and_profiles_are_ranked_lists(population: ls.Listeners) -> None:
    for u, mine in enumerate(population.friends):
        assert u not in mine
        assert all(u in population.friends[v] for v in mine)
    for artists in population.artists:
        ids = [a.id for a in artists]
        assert len(ids) == len(set(ids)) == 50
        assert all(a.genres for a in artists)


def test_generation_is_deterministic_per_seed() -> None:
    small = ls.ListenerSpec(users=200)
    again = ls.generate(small)
    assert ls.generate(small).edges() == again.edges()
    assert ls.generate(small).artists == again.artists
    assert ls.generate(dataclasses.replace(small, seed=8)).edges() != again.edges()


def test_the_check_flags_a_population_unlike_real_listeners() -> None:
    # one scene for everyone: strangers share as much as friends do
    flat = ls.ListenerSpec(users=400, scenes=1)
    failed = {t.name for t, _, ok in ls.check(ls.measure_statistics(ls.generate(flat))) if not ok}
    assert {"random pairs' artist Jaccard", "share of random pairs with no common artist"} <= failed
