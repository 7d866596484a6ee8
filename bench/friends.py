"""Friend-finding quality of every taste measure on listeners that resemble real ones.

    .venv/bin/python bench/friends.py [--quick]

1. Generate two populations (`music/listeners.py`): a validation one, on which the
   variants of the taste measure are compared, and a test one with another seed, on which
   every named measure and the baselines are reported. Nothing is chosen on the test one.
2. Print each population's statistics against the real-data targets.
3. For each query listener, score everyone else; friends are the hits. AUC, P@10 and HR@10
   with 95% bootstrap intervals over query listeners.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from rhime.music import friendship as fr
from rhime.music import listeners as ls
from rhime.music import similarity as sim
from rhime.music.taste import BUILDERS, Profile

VALIDATION_SEED = 7
TEST_SEED = 8
VALIDATION_QUERIES = 200
TARGETS = (0.86, 0.14, 0.62)  # AUC, P@10, HR@10 on the real data (taste alone)

Prepared = tuple[list[Profile], Callable[[Profile, Profile], float]]


def profiles_of(listeners: ls.Listeners, builder: str) -> list[Profile]:
    build = BUILDERS[builder]
    return [build(tracks=(), artists=artists) for artists in listeners.artists]


def named(name: str, profiles: Sequence[Profile], idf: sim.Idf) -> Prepared:
    """A named measure split as the service runs it: prepare each profile once, then score."""
    if name in sim.TUNED:
        tuning = sim.TUNED[name]
        table = idf if tuning.idf_power else None
        prepared = [sim.prepare(p, tuning=tuning, idf=table) for p in profiles]
        return prepared, lambda a, b: sim.blended_dot(a, b, tuning=tuning)
    if name in sim.NEEDS_IDF:
        return [sim.reweigh_profile(p, idf=idf) for p in profiles], sim.measure(
            sim.without_idf(name)
        )
    return list(profiles), sim.measure(name)


def tuned(tuning: sim.Tuning, profiles: Sequence[Profile], idf: sim.Idf) -> Prepared:
    prepared = [sim.prepare(p, tuning=tuning, idf=idf) for p in profiles]
    return prepared, lambda a, b: sim.blended_dot(a, b, tuning=tuning)


def run(
    listeners: ls.Listeners, queries: Sequence[int], name: str, prepared: Prepared
) -> fr.Quality:
    vectors, score = prepared
    results = fr.per_query(
        users=listeners.users,
        friends=listeners.friends,
        queries=queries,
        score=lambda q, v: score(vectors[q], vectors[v]),
    )
    return fr.quality(name=name, results=results)


def baselines(
    listeners: ls.Listeners, queries: Sequence[int], profiles: Sequence[Profile]
) -> list[fr.Quality]:
    df = sim.document_frequencies(profiles).artists
    # how mainstream a listener is: the mean share of listeners holding each of their artists
    mainstream = [
        sum(df[a] for a in p.artists) / max(1, len(p.artists)) / len(profiles) for p in profiles
    ]
    salt = random.Random(0).getrandbits(32)
    rows = [
        fr.quality(
            name="popularity only (baseline)",
            results=fr.per_query(
                users=listeners.users,
                friends=listeners.friends,
                queries=queries,
                score=lambda _q, v: mainstream[v],
            ),
        ),
        fr.quality(
            name="random (baseline)",
            results=fr.per_query(
                users=listeners.users,
                friends=listeners.friends,
                queries=queries,
                score=lambda q, v: random.Random(hash((salt, min(q, v), max(q, v)))).random(),
            ),
        ),
    ]
    return rows


def variants() -> dict[str, tuple[str, sim.Tuning]]:
    """Taste-measure variants compared on the validation population: (builder, tuning)."""
    out: dict[str, tuple[str, sim.Tuning]] = {}
    for builder in ("original", "ranked"):
        for artists in (0.5, 0.7):
            for idf_power in (0.0, 0.5, 1.0):
                blend = (
                    ("tracks", 0.4),
                    ("artists", 0.6 * artists),
                    ("genres", 0.6 * (1 - artists)),
                )
                tuning = sim.Tuning(blend=blend, idf_power=idf_power)
                out[f"{builder} a{artists:g} idf^{idf_power:g}"] = (builder, tuning)
        # BM25-style saturation of the summed genre weights, on the likeliest setting
        saturated = sim.Tuning(blend=blend, idf_power=0.5, saturation=1.0)
        out[f"{builder} a0.7 idf^0.5 sat1"] = (builder, saturated)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer queries, no variant search")
    parser.add_argument("--no-variants", action="store_true", help="skip the variant search")
    args = parser.parse_args(argv)
    queries_n = 100 if args.quick else 400

    started = time.perf_counter()
    test = ls.generate(ls.ListenerSpec(seed=TEST_SEED))
    print(f"# Test population (seed {TEST_SEED}), built in {time.perf_counter() - started:.1f} s")
    print(ls.format_check(ls.check(ls.measure_statistics(test))))
    queries = random.Random(TEST_SEED).sample(range(test.users), queries_n)

    if not (args.quick or args.no_variants):
        validation = ls.generate(ls.ListenerSpec(seed=VALIDATION_SEED))
        print(f"\n# Validation population (seed {VALIDATION_SEED})")
        print(ls.format_check(ls.check(ls.measure_statistics(validation))))
        vqueries = random.Random(VALIDATION_SEED).sample(
            range(validation.users), VALIDATION_QUERIES
        )
        by_builder = {b: profiles_of(validation, b) for b in ("original", "ranked")}
        idfs = {
            b: sim.idf_from_frequencies(sim.document_frequencies(p)) for b, p in by_builder.items()
        }
        rows = [
            run(validation, vqueries, name, tuned(tuning, by_builder[b], idfs[b]))
            for name, (b, tuning) in variants().items()
        ]
        rows.sort(key=lambda r: -r.auc.mean)
        print(f"\n# Taste-measure variants, validation population ({VALIDATION_QUERIES} queries)")
        print(fr.format_table(rows))

    print(f"\n# Every measure on the test population ({len(queries)} queries)")
    rows = []
    for builder in ("original", "ranked"):
        profiles = profiles_of(test, builder)
        idf = sim.idf_from_frequencies(sim.document_frequencies(profiles))
        for name in sim.MEASURES:
            mark = " (default)" if name == sim.DEFAULT and builder == sim.BUILDER else ""
            rows.append(run(test, queries, f"{builder} + {name}{mark}", named(name, profiles, idf)))
    rows += baselines(test, queries, profiles_of(test, "original"))
    print(fr.format_table(rows, targets=TARGETS))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
