"""Recommendation speed and quality on synthetic populations.

    .venv/bin/python bench/recommend.py [--quick]

1. Scale: index 10K and 100K synthetic users, then time recommendations for newly connected
   users (not in the index) through candidates.py; the ratio between the two sizes shows
   whether the query cost follows the population (10x) or the user's own taste (~1x).
   Candidate profiles are regenerated on demand, standing in for a database fetch.
2. Quality: precision@10 and hit-rate@10 of every measure against the planted communities,
   by brute force, and of the default measure through the index.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections import Counter
from collections.abc import Sequence

from rhime.music import candidates as cand
from rhime.music import evaluation as ev
from rhime.music import similarity as sim
from rhime.music.population import PopulationSpec, catalogue, user_id, user_taste
from rhime.music.taste import BUILDERS, Profile

LIMITS = cand.IndexLimits()
COMMUNITIES = 20


def profile_of(spec: PopulationSpec, index: int) -> Profile:
    # built as the service builds profiles
    taste = user_taste(spec, index)
    return BUILDERS[sim.BUILDER](tracks=taste.tracks, artists=taste.artists)


def _chunk(
    args: tuple[PopulationSpec, int, int],
) -> tuple[list[tuple[str, list[cand.Posting]]], list[Counter[str]]]:
    spec, start, stop = args
    entries = []
    frequencies: list[Counter[str]] = [Counter(), Counter(), Counter()]
    for index in range(start, stop):
        profile = profile_of(spec, index)
        entries.append((user_id(index), cand.index_entries(profile, limits=LIMITS)))
        for counter, weights in zip(
            frequencies, (profile.tracks, profile.artists, profile.genres), strict=True
        ):
            counter.update(weights.keys())
    return entries, frequencies


def build(spec: PopulationSpec, *, workers: int) -> tuple[cand.InvertedIndex, sim.Idf]:
    step = 2000
    chunks = [(spec, s, min(s + step, spec.users)) for s in range(0, spec.users, step)]
    catalogue(spec)  # built once before forking
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(_chunk, chunks)
    index = cand.build_index(entry for entries, _ in results for entry in entries)
    totals: list[Counter[str]] = [Counter(), Counter(), Counter()]
    for _, frequencies in results:
        for total, part in zip(totals, frequencies, strict=True):
            total.update(part)
    df = sim.DocumentFrequencies(
        users=spec.users, tracks=dict(totals[0]), artists=dict(totals[1]), genres=dict(totals[2])
    )
    return index, sim.idf_from_frequencies(df)


def timed_queries(
    spec: PopulationSpec, index: cand.InvertedIndex, idf: sim.Idf, *, queries: int
) -> dict[str, float]:
    measure = sim.measure(sim.DEFAULT, idf=idf)

    def load(ids: Sequence[str]) -> dict[str, Profile]:
        return {u: profile_of(spec, int(u.removeprefix("listener"))) for u in ids}

    totals, searches, touched, candidates = [], [], [], []
    hits = 0
    for q in range(queries):
        newcomer = spec.users + q  # not in the index: a newly connected user
        started = time.perf_counter()
        profile = profile_of(spec, newcomer)
        search = cand.find_candidates(
            index, user_id=user_id(newcomer), profile=profile, limits=LIMITS
        )
        searched = time.perf_counter()
        loaded = load([u for u, _ in search.candidates])
        top = cand.rank(profile=profile, candidates=loaded, similarity=measure)
        finished = time.perf_counter()
        totals.append(finished - started)
        searches.append(searched - started)
        touched.append(search.postings_touched)
        candidates.append(len(search.candidates))
        mine = user_taste(spec, newcomer).community
        hits += sum(
            user_taste(spec, int(u.removeprefix("listener"))).community == mine for u, _ in top
        )
    return {
        "median_s": statistics.median(totals),
        "p95_s": sorted(totals)[int(0.95 * (len(totals) - 1))],
        "search_median_s": statistics.median(searches),
        "postings_touched": statistics.mean(touched),
        "candidates": statistics.mean(candidates),
        "precision_at_10": hits / (10 * queries),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer queries and a smaller quality run"
    )
    args = parser.parse_args(argv)
    workers = max(1, min(4, multiprocessing.cpu_count()))
    queries = 30 if args.quick else 100

    print(f"# Scale (measure {sim.DEFAULT}, {COMMUNITIES} communities, {queries} new users)")
    print(
        f"{'users':>8}  {'build s':>8}  {'median ms':>9}  {'p95 ms':>7}  {'search ms':>9}"
        f"  {'postings':>8}  {'cands':>5}  {'prec@10':>7}"
    )
    medians = {}
    for users in (10_000, 100_000):
        spec = PopulationSpec(seed=1, users=users, communities=COMMUNITIES)
        started = time.perf_counter()
        index, idf = build(spec, workers=workers)
        built = time.perf_counter() - started
        row = timed_queries(spec, index, idf, queries=queries)
        medians[users] = row["median_s"]
        print(
            f"{users:>8}  {built:>8.1f}  {row['median_s'] * 1e3:>9.1f}  {row['p95_s'] * 1e3:>7.1f}"
            f"  {row['search_median_s'] * 1e3:>9.1f}  {row['postings_touched']:>8.0f}"
            f"  {row['candidates']:>5.0f}  {row['precision_at_10']:>7.3f}"
        )
        del index, idf
    print(f"ratio 100K/10K of the median: {medians[100_000] / medians[10_000]:.2f} (10 = linear)")

    users, quality_queries = (1000, 100) if args.quick else (2000, 300)
    builders = ("original",) if args.quick else ("original", "ranked")
    for builder in builders:
        spec = PopulationSpec(seed=3, users=users, communities=COMMUNITIES)
        print(
            f"\n# Quality, brute force ({builder} profiles, {users} users, "
            f"{COMMUNITIES} communities, {quality_queries} queries)"
        )
        ev.print_quality_table(spec=spec, builder=builder, queries=quality_queries)


if __name__ == "__main__":
    main()
