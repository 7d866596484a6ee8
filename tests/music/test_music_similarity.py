import itertools
import math
import random

import pytest

from rhime.music import similarity as sim
from rhime.music.taste import CATEGORIES, EMPTY, Profile


def profile(
    tracks: dict[str, float], artists: dict[str, float], genres: dict[str, float]
) -> Profile:
    return Profile(tracks=tracks, artists=artists, genres=genres)


A = profile({"t1": 3, "t2": 3}, {"x": 14, "y": 8}, {"rock": 22, "pop": 8})
B = profile({"t2": 3, "t3": 3}, {"x": 8, "z": 11}, {"rock": 8, "jazz": 11})
DISJOINT = profile({"t9": 3}, {"q": 8}, {"metal": 8})


def all_measures(*profiles: Profile) -> dict[str, sim.Similarity]:
    idf = sim.idf_from_frequencies(sim.document_frequencies(profiles))
    return {name: sim.measure(name, idf=idf) for name in sim.MEASURES}


def test_original_jaccard_on_worked_example() -> None:
    # tracks: min 3 / (6 + 6 - 3); artists: min 8 / (22 + 19 - 8); genres: 8 / (30 + 19 - 8)
    expected = 0.4 * 3 / 9 + 0.3 * 8 / 33 + 0.3 * 8 / 41
    assert sim.jaccard_similarity(A, B) == pytest.approx(expected)
    assert sim.measure("jaccard") is sim.jaccard_similarity


def test_cosine_on_worked_example() -> None:
    tracks = 9 / (math.sqrt(18) * math.sqrt(18))
    artists = 14 * 8 / (math.hypot(14, 8) * math.hypot(8, 11))
    genres = 22 * 8 / (math.hypot(22, 8) * math.hypot(8, 11))
    assert sim.cosine_similarity(A, B) == pytest.approx(0.4 * tracks + 0.3 * artists + 0.3 * genres)


@pytest.mark.parametrize("name", sim.MEASURES)
def test_measure_properties_on_hand_written_profiles(name: str) -> None:
    measure = all_measures(A, B, DISJOINT)[name]

    assert measure(A, B) == pytest.approx(measure(B, A))
    assert 0 < measure(A, B) < 1
    assert measure(A, A) == pytest.approx(1.0)
    assert measure(A, DISJOINT) == 0.0
    assert measure(A, EMPTY) == 0.0
    assert measure(EMPTY, EMPTY) == 0.0


def test_empty_categories_count_zero_not_nan() -> None:
    only_tracks = profile({"t1": 3}, {}, {})
    assert sim.jaccard_similarity(only_tracks, only_tracks) == pytest.approx(0.4)
    assert sim.cosine_similarity(only_tracks, only_tracks) == pytest.approx(0.4)


def random_profile(rng: random.Random) -> Profile:
    def weights(prefix: str, universe: int) -> dict[str, float]:
        keys = rng.sample(range(universe), rng.randint(0, min(8, universe)))
        return {f"{prefix}{k}": rng.choice([0.5, 1, 3, 8, 11.5]) for k in keys}

    return profile(weights("t", 30), weights("a", 15), weights("g", 6))


def test_measure_properties_on_generated_profiles() -> None:
    rng = random.Random(42)
    profiles = [random_profile(rng) for _ in range(60)]
    measures = all_measures(*profiles)
    for name, measure in measures.items():
        for _ in range(300):
            a, b = rng.choice(profiles), rng.choice(profiles)
            value = measure(a, b)
            assert 0.0 <= value <= 1.0, name
            assert value == pytest.approx(measure(b, a)), name
            if not _shares(a, b):
                assert value == 0.0, name
        for p in profiles:
            full = [c for c in CATEGORIES if p.weights(c)]
            expected = sum((sim.blend_of(name)[c] for c in full), 0.0)
            assert measure(p, p) == pytest.approx(expected), name


def _shares(a: Profile, b: Profile) -> bool:
    return any(a.weights(c).keys() & b.weights(c).keys() for c in ("tracks", "artists", "genres"))


def test_idf_measures_equal_plain_measures_on_reweighed_profiles() -> None:
    rng = random.Random(7)
    profiles = [random_profile(rng) for _ in range(30)]
    idf = sim.idf_from_frequencies(sim.document_frequencies(profiles))
    for a, b in itertools.pairwise(profiles):
        ra, rb = sim.reweigh_profile(a, idf=idf), sim.reweigh_profile(b, idf=idf)
        assert sim.measure("cosine_idf", idf=idf)(a, b) == pytest.approx(
            sim.cosine_similarity(ra, rb)
        )
        assert sim.measure("jaccard_idf", idf=idf)(a, b) == pytest.approx(
            sim.jaccard_similarity(ra, rb)
        )


def test_idf_down_weighs_items_everyone_has() -> None:
    popular = {"star": 8.0}
    crowd = [profile({}, popular | {f"niche{i}": 8.0}, {}) for i in range(50)]
    pair_a = profile({}, popular | {"rare": 8.0}, {})
    pair_b = profile({}, {"rare": 8.0, "other": 8.0}, {})
    population = [*crowd, pair_a, pair_b]
    idf = sim.idf_from_frequencies(sim.document_frequencies(population))
    cos_idf = sim.measure("cosine_idf", idf=idf)

    # without IDF, sharing the popular artist counts as much as sharing the rare one
    assert sim.cosine_similarity(pair_a, crowd[0]) == pytest.approx(
        sim.cosine_similarity(pair_a, pair_b)
    )
    assert cos_idf(pair_a, pair_b) > 2 * cos_idf(pair_a, crowd[0])
    assert idf.artists["star"] < idf.artists["rare"] < idf.unseen + 1e-9


def test_idf_measure_without_table_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an IDF table"):
        sim.measure("cosine_idf")
    with pytest.raises(ValueError, match="unknown measure"):
        sim.measure("euclid")
    assert sim.DEFAULT in sim.MEASURES


def test_explanation_lists_common_items_by_combined_weight() -> None:
    a = profile({"t1": 3, "t2": 3}, {"x": 14, "y": 8, "w": 3}, {"rock": 22, "pop": 8})
    b = profile({"t2": 3}, {"x": 8, "y": 20, "w": 1}, {"rock": 8, "pop": 8, "jazz": 1})

    explanation = sim.explain(a, b, name="jaccard")

    assert explanation.common_tracks == ["t2"]
    assert explanation.common_artists == ["y", "x", "w"]  # 28, 22, 4
    assert explanation.common_genres == ["rock", "pop"]
    assert explanation.similarity == pytest.approx(sim.jaccard_similarity(a, b))
    assert explanation.breakdown == {
        "tracks": pytest.approx(3 / 6),
        "artists": pytest.approx((8 + 8 + 1) / (14 + 20 + 3)),
        "genres": pytest.approx((8 + 8) / (22 + 8 + 1)),
    }
    blended = sum(sim.BLEND[c] * v for c, v in explanation.breakdown.items())
    assert explanation.similarity == pytest.approx(blended)


@pytest.mark.parametrize("name", sim.MEASURES)
def test_prepared_profiles_score_the_same_as_the_two_argument_measure(name: str) -> None:
    rng = random.Random(3)
    profiles = [random_profile(rng) for _ in range(30)]
    idf = sim.idf_from_frequencies(sim.document_frequencies(profiles))
    measure, scoring = sim.measure(name, idf=idf), sim.scoring(name)
    for a, b in itertools.pairwise(profiles):
        pa, pb = sim.prepared(a, name=name, idf=idf), sim.prepared(b, name=name, idf=idf)
        assert scoring(pa, pb) == pytest.approx(measure(a, b)), name
        assert sim.explain_prepared(pa, pb, name=name).similarity == pytest.approx(measure(a, b))


def test_taste_explanation_blends_to_the_score_and_leads_with_what_raised_it() -> None:
    a = profile({"t1": 3, "t2": 3}, {"x": 14, "y": 8, "w": 3}, {"rock": 22, "pop": 8})
    b = profile({"t2": 3}, {"x": 1, "y": 20, "w": 1}, {"rock": 8, "pop": 8, "jazz": 1})

    why = sim.explain(a, b, name="taste")

    # x is a's favourite but barely b's; y is heavy on both, so it counts most
    assert why.common_artists == ["y", "x", "w"]
    assert why.common_tracks == ["t2"]
    shares = sim.blend_of("taste")
    assert why.similarity == pytest.approx(sum(shares[c] * v for c, v in why.breakdown.items()))
    assert why.similarity == pytest.approx(sim.measure("taste")(a, b))
