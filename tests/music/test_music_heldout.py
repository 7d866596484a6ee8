from rhime.music import heldout as ho

# two triangles joined by 2-3; 6 has one friend
FRIENDS = [
    frozenset({1, 2}),
    frozenset({0, 2}),
    frozenset({0, 1, 3}),
    frozenset({2, 4, 5}),
    frozenset({3, 5}),
    frozenset({3, 4, 6}),
    frozenset({5}),
]


def test_hiding_keeps_a_share_per_query_and_leaves_others_untouched() -> None:
    held = ho.hide(friends=FRIENDS, queries=[3, 6], share=0.34, seed=1)
    assert len(held.hidden[3]) == 1
    assert held.kept[3] | held.hidden[3] == FRIENDS[3]
    assert held.kept[3].isdisjoint(held.hidden[3])
    assert held.hidden[6] == {5}
    assert held.kept[6] == frozenset()
    assert held.kept[0] == FRIENDS[0]
    assert held.hidden[0] == frozenset()
    again = ho.hide(friends=FRIENDS, queries=[3, 6], share=0.34, seed=1)
    assert again == held


def test_closeness_finds_the_hidden_friend_through_the_kept_ones() -> None:
    # 0 hides 1 and keeps 2; 2 is friends with 1, so 1 is close; 4 is not reachable in two steps
    held = ho.HeldOut(
        kept=[frozenset({2}), *FRIENDS[1:]], hidden=[frozenset({1}), *[frozenset()] * 6]
    )
    close = ho.closeness(query=0, held=held, following=dict(enumerate(FRIENDS)))
    assert close[1] > 0
    assert close[3] > 0
    assert 4 not in close
    assert 0 not in close
    assert 2 not in close


def test_kept_friends_are_not_candidates_and_hidden_ones_are_the_hits() -> None:
    held = ho.HeldOut(
        kept=[frozenset({2}), *FRIENDS[1:]], hidden=[frozenset({1}), *[frozenset()] * 6]
    )
    seen: list[int] = []

    def score(q: int, v: int) -> float:
        seen.append(v)
        return 1.0 if v == 1 else 0.0

    result = ho.evaluate(users=7, held=held, queries=[0, 3], score=score, k=2)
    assert 2 not in seen
    assert 0 not in seen
    assert result.auc == [1.0]
    assert result.hit == [1.0]
    assert result.precision == [0.5]


def test_graph_closeness_beats_chance_on_held_out_edges() -> None:
    queries = list(range(7))
    held = ho.hide(friends=FRIENDS, queries=queries, share=0.34, seed=3)
    following = dict(enumerate(FRIENDS))
    close = {q: ho.closeness(query=q, held=held, following=following) for q in queries}
    result = ho.evaluate(
        users=7, held=held, queries=queries, score=lambda q, v: close[q].get(v, 0.0)
    )
    flat = ho.evaluate(users=7, held=held, queries=queries, score=lambda q, v: 0.0)
    assert sum(result.auc) > sum(flat.auc)
