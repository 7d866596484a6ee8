import io
import random

import pytest

from rhime.music import evaluation as ev
from rhime.music import similarity as sim
from rhime.music.population import PopulationSpec
from rhime.music.taste import Profile

SPEC = PopulationSpec(seed=11, users=300, communities=10)
QUERIES = random.Random(0).sample(range(SPEC.users), 60)
FLOOR = 0.6  # precision@10; chance level is about 1 / communities


@pytest.fixture(scope="module")
def labelled() -> ev.Labelled:
    return ev.synthetic_profiles(spec=SPEC)


def test_default_measure_clears_the_floor_and_broken_ones_do_not(labelled: ev.Labelled) -> None:
    idf = sim.idf_from_frequencies(sim.document_frequencies(labelled.profiles))

    def quality(measure: sim.Similarity) -> ev.Quality:
        return ev.evaluate(labelled=labelled, similarity=measure, name="m", queries=QUERIES)

    def constant(_a: Profile, _b: Profile) -> float:
        return 0.5

    good = quality(sim.measure(sim.DEFAULT, idf=idf))
    original = quality(sim.measure("jaccard"))
    rand = quality(ev.random_similarity(seed=1))
    flat = quality(constant)

    assert good.precision_at_k > FLOOR
    assert good.hit_rate_at_k > 0.95
    assert original.precision_at_k > FLOOR
    assert rand.precision_at_k < FLOOR / 2
    assert flat.precision_at_k < FLOOR / 2
    assert good.queries == 60


def test_score_counts_same_community_recommendations() -> None:
    communities = [0, 0, 1, 1, 0]
    precision, hit_rate = ev.score(
        communities=communities, recommendations={0: [1, 2], 2: [0, 4]}, k=2
    )
    assert precision == pytest.approx((0.5 + 0.0) / 2)
    assert hit_rate == pytest.approx(0.5)


def test_table_has_a_row_per_measure_and_a_baseline() -> None:
    out = io.StringIO()
    rows = ev.print_quality_table(
        spec=PopulationSpec(seed=2, users=120, communities=6), queries=20, file=out
    )

    assert [r.measure for r in rows] == [*sim.MEASURES, "random (baseline)"]
    text = out.getvalue()
    assert "precision@10" in text
    for name in sim.MEASURES:
        assert name in text
    baseline = rows[-1]
    assert all(r.precision_at_k > baseline.precision_at_k for r in rows[:-1])
