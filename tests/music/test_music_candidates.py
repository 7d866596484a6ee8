from collections.abc import Sequence

import pytest

from rhime.music import candidates as cand
from rhime.music import similarity as sim
from rhime.music.evaluation import Labelled, score, synthetic_profiles
from rhime.music.population import PopulationSpec, user_id
from rhime.music.taste import Profile

SMALL = cand.IndexLimits(
    artists_per_user=10, genres_per_user=3, postings_per_key=20, max_candidates=50
)


def index_of(labelled: Labelled, limits: cand.IndexLimits) -> cand.InvertedIndex:
    return cand.build_index(
        (user_id(i), cand.index_entries(p, limits=limits)) for i, p in enumerate(labelled.profiles)
    )


def test_index_entries_take_the_heaviest_keys_with_relative_weights() -> None:
    profile = Profile(
        tracks={"t": 3},
        artists={"a": 20, "b": 10, "c": 1},
        genres={"rock": 30, "pop": 3},
    )
    limits = cand.IndexLimits(artists_per_user=2, genres_per_user=1)

    assert cand.index_entries(profile, limits=limits) == [
        ("artist:a", 100),
        ("artist:b", 50),
        ("genre:rock", 100),
    ]


def test_postings_are_heaviest_first_and_add_remove_keep_them_consistent() -> None:
    limits = cand.IndexLimits(artists_per_user=5, genres_per_user=0)
    index = cand.build_index(
        [("u1", [("artist:a", 30)]), ("u2", [("artist:a", 90), ("artist:b", 10)])]
    )
    cand.add_user(
        index,
        user_id="u3",
        profile=Profile(tracks={}, artists={"a": 5, "c": 10}, genres={}),
        limits=limits,
    )

    assert index.postings["artist:a"] == [("u2", 90), ("u3", 50), ("u1", 30)]
    assert index.users == 3

    # re-adding after a taste change replaces the old postings
    cand.add_user(
        index,
        user_id="u2",
        profile=Profile(tracks={}, artists={"c": 1}, genres={}),
        limits=limits,
    )
    assert index.postings["artist:a"] == [("u3", 50), ("u1", 30)]
    assert "artist:b" not in index.postings
    assert index.postings["artist:c"] == [("u2", 100), ("u3", 100)]  # ties by id

    with pytest.raises(ValueError, match="given twice"):
        cand.build_index([("u1", []), ("u1", [])])


def test_candidate_search_cost_does_not_grow_with_the_population() -> None:
    touched = {}
    for users in (300, 3000):
        labelled = synthetic_profiles(spec=PopulationSpec(seed=5, users=users, communities=10))
        index = index_of(labelled, SMALL)
        worst = 0
        for i in range(0, 300, 15):  # the same 20 users in both populations
            search = cand.find_candidates(
                index, user_id=user_id(i), profile=labelled.profiles[i], limits=SMALL
            )
            worst = max(worst, search.postings_touched)
            assert len(search.candidates) <= SMALL.max_candidates
            assert user_id(i) not in dict(search.candidates)
        touched[users] = worst
    bound = (SMALL.artists_per_user + SMALL.genres_per_user) * SMALL.postings_per_key
    assert touched[3000] <= bound < 3000
    # ten times the users, at most a fraction more work (a full scan would be 10x)
    assert touched[3000] < 2 * touched[300]


def test_common_keys_are_skipped_unless_needed() -> None:
    limits = cand.IndexLimits(
        artists_per_user=2,
        genres_per_user=0,
        max_key_share=0.5,
        min_key_postings=1,
        min_candidates=1,
    )
    everyone = [(f"u{i}", [("artist:star", 50)]) for i in range(10)]
    index = cand.build_index([*everyone, ("fan", [("artist:star", 50), ("artist:rare", 80)])])
    me = Profile(tracks={}, artists={"star": 10, "rare": 8}, genres={})

    search = cand.find_candidates(index, user_id="me", profile=me, limits=limits)
    assert [u for u, _ in search.candidates] == ["fan"]
    assert search.keys_skipped == 1

    mainstream = Profile(tracks={}, artists={"star": 10}, genres={})
    search = cand.find_candidates(index, user_id="me", profile=mainstream, limits=limits)
    assert len(search.candidates) == 11  # nothing else to go on: the common key is read
    assert search.keys_skipped == 0

    excluded = cand.find_candidates(index, user_id="me", profile=me, limits=limits, exclude={"fan"})
    assert "fan" not in dict(excluded.candidates)


def test_recommendations_from_the_index_find_the_community() -> None:
    spec = PopulationSpec(seed=9, users=300, communities=10)
    labelled = synthetic_profiles(spec=spec)
    limits = cand.IndexLimits()
    index = index_of(labelled, limits)
    by_id = {user_id(i): p for i, p in enumerate(labelled.profiles)}
    idf = sim.idf_from_frequencies(sim.document_frequencies(labelled.profiles))
    measure = sim.measure(sim.DEFAULT, idf=idf)
    loaded: list[int] = []

    def load(ids: Sequence[str]) -> dict[str, Profile]:
        loaded.append(len(ids))
        return {i: by_id[i] for i in ids}

    recommendations = {}
    for i in range(0, 300, 5):
        top = cand.recommend(
            index,
            user_id=user_id(i),
            profile=labelled.profiles[i],
            load_profiles=load,
            similarity=measure,
            limits=limits,
        )
        assert len(top) == 10
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
        recommendations[i] = [int(u.removeprefix("listener")) for u, _ in top]
    precision, hit_rate = score(communities=labelled.communities, recommendations=recommendations)

    assert max(loaded) <= limits.max_candidates
    assert precision > 0.8
    assert hit_rate > 0.95
