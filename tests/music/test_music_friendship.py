import pytest

from rhime.music import friendship as fr


def test_auc_counts_ties_half_and_orders_by_score() -> None:
    assert fr.auc_of([0.9, 0.1, 0.2], [True, False, False]) == 1.0
    assert fr.auc_of([0.1, 0.9, 0.2], [True, False, False]) == 0.0
    assert fr.auc_of([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    # one positive above one negative, tied with the other
    assert fr.auc_of([0.7, 0.7, 0.1], [True, False, False]) == pytest.approx(0.75)


FRIENDS = [frozenset({1, 2}), frozenset({0}), frozenset({0}), frozenset(), frozenset()]


def test_a_perfect_scorer_finds_every_friend_and_a_constant_one_scores_chance() -> None:
    def perfect(q: int, v: int) -> float:
        return 1.0 if v in FRIENDS[q] else 0.0

    good = fr.per_query(users=5, friends=FRIENDS, queries=range(5), score=perfect, k=2)
    assert good.auc == [1.0, 1.0, 1.0]  # friendless queries are skipped
    assert good.precision == [1.0, 0.5, 0.5]
    assert good.hit == [1.0, 1.0, 1.0]

    flat = fr.per_query(users=5, friends=FRIENDS, queries=range(5), score=lambda q, v: 0.0, k=2)
    assert flat.auc == [0.5, 0.5, 0.5]


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_queries() -> None:
    few = fr.bootstrap([0.0, 1.0] * 10, seed=1)
    many = fr.bootstrap([0.0, 1.0] * 500, seed=1)
    for interval in (few, many):
        assert interval.low <= interval.mean == 0.5 <= interval.high
    assert many.high - many.low < few.high - few.low
    assert fr.bootstrap([0.3] * 5, seed=1) == fr.Interval(0.3, 0.3, 0.3)
