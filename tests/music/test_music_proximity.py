import math

import pytest

from rhime.music import proximity as px

# me follows a and b; a follows c and d; b follows c and everyone in a big list
FOLLOWING = {
    "a": {"c", "d"},
    "b": {"c", *(f"x{i}" for i in range(20))},
}


def test_a_candidate_followed_by_more_people_i_follow_is_closer() -> None:
    found = px.proximities(user="me", mine={"a", "b"}, following=FOLLOWING)
    assert found["c"].closeness > found["d"].closeness > found["x0"].closeness > 0
    assert found["c"].adamic_adar == pytest.approx(1 / math.log(3) + 1 / math.log(22))
    # the more selective follower is named first
    assert found["c"].via == ("a", "b")


def test_never_proposes_me_or_people_i_already_follow() -> None:
    following = {"a": {"me", "b", "c"}, "b": {"a"}}
    found = px.proximities(user="me", mine={"a", "b"}, following=following)
    assert set(found) == {"c"}


def test_a_known_degree_beats_the_cut_list_length() -> None:
    cut = px.proximities(user="me", mine={"a"}, following={"a": {"c"}})
    real = px.proximities(user="me", mine={"a"}, following={"a": {"c"}}, degree={"a": 1000})
    assert real["c"].adamic_adar < cut["c"].adamic_adar


def test_closeness_is_zero_without_a_path_and_below_one_with_many() -> None:
    assert px.closeness(0.0) == 0.0
    assert 0.0 < px.closeness(1.0) == 0.5 < px.closeness(50.0) < 1.0


def test_newcomers_are_ranked_by_taste_alone() -> None:
    # nobody followed: every closeness is 0 and the score is the taste similarity itself
    assert px.proximities(user="me", mine=set(), following=FOLLOWING) == {}
    assert px.blend(taste=0.37, closeness=0.0) == 0.37


def test_the_graph_lifts_an_equal_taste_above_a_stranger() -> None:
    friend_of_friends = px.blend(taste=0.2, closeness=0.5, weight=0.75)
    stranger = px.blend(taste=0.2, closeness=0.0, weight=0.75)
    better_taste = px.blend(taste=0.7, closeness=0.0, weight=0.75)
    assert stranger < friend_of_friends < better_taste
