"""People you may know: taste alone against taste blended with the follow graph, on held-out
friendships of listeners that resemble real ones.

    .venv/bin/python bench/people_you_may_know.py [--quick]

1. Generate a validation population and a test population with another seed
   (`music/listeners.py`); friendship is a mutual follow.
2. For each query listener hide a share of their friendships (`music/heldout.py`); the rest
   are the people they already follow, and are not candidates.
3. Score every candidate with the default taste measure, with graph closeness alone
   (Adamic-Adar through the friends kept, `music/proximity.py`) and with the blend
   ``taste + weight * closeness``. The weight is chosen by AUC on the validation population;
   the test population reports taste, graph and the blend at that weight, nothing chosen on it.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from rhime.music import friendship as fr
from rhime.music import heldout as ho
from rhime.music import listeners as ls
from rhime.music import proximity as px
from rhime.music import similarity as sim
from rhime.music.taste import BUILDERS

VALIDATION_SEED = 7
TEST_SEED = 8
SHARE = 0.2  # of each query's friendships hidden
WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


class Scored:
    """One population's held-out split with taste and closeness computed once per query."""

    def __init__(self, listeners: ls.Listeners, queries: Sequence[int], seed: int) -> None:
        self.users = listeners.users
        self.held = ho.hide(friends=listeners.friends, queries=queries, share=SHARE, seed=seed)
        self.queries = [q for q in queries if self.held.hidden[q]]
        profiles = [
            BUILDERS[sim.BUILDER](tracks=(), artists=artists) for artists in listeners.artists
        ]
        idf = sim.idf_from_frequencies(sim.document_frequencies(profiles))
        prepared = [sim.prepared(p, idf=idf) for p in profiles]
        score = sim.scoring()
        self.taste = {q: [score(prepared[q], other) for other in prepared] for q in self.queries}
        following = dict(enumerate(listeners.friends))
        self.close = {
            q: ho.closeness(query=q, held=self.held, following=following) for q in self.queries
        }

    def followers(self) -> list[int]:
        """Queries that kept at least one friend: the ones the graph can help."""
        return [q for q in self.queries if self.held.kept[q]]

    def run(self, name: str, *, weight: float | None, queries: Sequence[int]) -> fr.Quality:
        """``weight`` None: graph closeness alone."""

        def score(q: int, v: int) -> float:
            c = self.close[q].get(v, 0.0)
            return (
                c
                if weight is None
                else px.blend(taste=self.taste[q][v], closeness=c, weight=weight)
            )

        results = ho.evaluate(users=self.users, held=self.held, queries=queries, score=score)
        return fr.quality(name=name, results=results)

    def random(self, queries: Sequence[int]) -> fr.Quality:
        salt = random.Random(0).getrandbits(32)
        results = ho.evaluate(
            users=self.users,
            held=self.held,
            queries=queries,
            score=lambda q, v: random.Random(hash((salt, q, v))).random(),
        )
        return fr.quality(name="random (baseline)", results=results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer queries")
    args = parser.parse_args(argv)
    validation_n, test_n = (100, 150) if args.quick else (200, 400)
    started = time.perf_counter()

    population = ls.generate(ls.ListenerSpec(seed=VALIDATION_SEED))
    sample = random.Random(VALIDATION_SEED).sample(range(population.users), validation_n)
    validation = Scored(population, sample, VALIDATION_SEED)
    rows = [
        validation.run(f"taste + {w:g} x closeness", weight=w, queries=validation.queries)
        for w in WEIGHTS
    ]
    rows.append(validation.run("closeness alone", weight=None, queries=validation.queries))
    print(
        f"# Validation population (seed {VALIDATION_SEED}): {len(validation.queries)} queries,"
        f" {len(validation.followers())} kept a friend; {SHARE:g} of friendships hidden"
    )
    print(fr.format_table(rows))
    best = max(zip(WEIGHTS, rows, strict=False), key=lambda pair: pair[1].auc.mean)[0]
    print(f"chosen weight: {best:g} (by AUC); the service uses {px.WEIGHT:g}")

    population = ls.generate(ls.ListenerSpec(seed=TEST_SEED))
    sample = random.Random(TEST_SEED).sample(range(population.users), test_n)
    test = Scored(population, sample, TEST_SEED)
    for label, queries in (
        ("every query", test.queries),
        ("queries that kept a friend", test.followers()),
    ):
        print(f"\n# Test population (seed {TEST_SEED}), {label}: {len(queries)} queries")
        print(
            fr.format_table(
                [
                    test.run("taste alone (default measure)", weight=0.0, queries=queries),
                    test.run("closeness alone (Adamic-Adar)", weight=None, queries=queries),
                    test.run(f"taste + {best:g} x closeness", weight=best, queries=queries),
                    test.random(queries),
                ]
            )
        )
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
