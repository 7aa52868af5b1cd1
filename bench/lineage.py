"""Subject lineage: "which model versions used subject X?" at 10 million subject-run rows
(issue 11's target: under 1 s).

Run with `python -m bench.lineage [--runs R] [--subjects-per-run S] [--population P]`.
Each backend gets a fresh index with R training runs and their model versions recorded
through the API, their subjects (S per run, drawn from P pseudonyms shaped like
agogosml.privacy's) loaded in key order with executemany (SQLite) or COPY (PostgreSQL).
Then one more run of S subjects through `record_run` (what each training adds), and
`versions_for` for random subjects, timed one by one (median, p99, max). The default is
200 runs x 50,000 subjects = 10,000,000 rows. PostgreSQL runs when a server is available
(AGOGOSML_BENCH_POSTGRES, or Debian's binaries: a throwaway server with fsync on);
`--backends sqlite` leaves it out.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg

from agogosml.privacy.lineage import SqlLineageIndex
from agogosml.privacy.lineage.postgres import PostgresLineageIndex
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex
from bench.store import postgres

TARGET_S = 1.0


def pseudonyms(count: int) -> list[str]:
    return ["ps_" + base64.b32encode(hashlib.blake2b(i.to_bytes(8, "little"),
                                                      digest_size=16).digest())
            .decode("ascii").rstrip("=").lower() for i in range(count)]


def history(runs: int, per_run: int, population: int, seed: int) -> np.ndarray:
    """Each run's subjects (indices into the population), one row per run."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(population, per_run, replace=False) for _ in range(runs)])


def key_ordered_rows(drawn: np.ndarray, population: list[str],
                     run_keys: list[int]) -> Iterator[tuple[str, int]]:
    """(subject, run_key) in the subjects table's key order: the B-tree is filled by
    appending, as a restore or a bulk load would, instead of 200 scattered rewrites."""
    runs = np.repeat(np.arange(drawn.shape[0]), drawn.shape[1])
    subjects = drawn.ravel()
    for i in np.lexsort((runs, subjects)):  # pseudonyms sort like their indices (see main)
        yield population[subjects[i]], run_keys[runs[i]]


def fill(index: SqlLineageIndex, bulk: Callable[[Iterator[tuple[str, int]]], None],
         population: list[str], drawn: np.ndarray) -> float:
    """Records the runs (empty) and their versions through the API, then their subjects in
    bulk; returns subject rows per second."""
    started = time.perf_counter()
    for run in range(drawn.shape[0]):
        run_id = f"{run:032x}"
        index.record_run(run_id, "fraud", f"sha256:{run:064x}", [])
        index.record_version(run_id, "fraud", str(run + 1))
    run_keys = [key for (key,) in index._query(  # the bench's own shortcut
        "SELECT run_key FROM lineage_runs ORDER BY run_id")]
    bulk(key_ordered_rows(drawn, population, run_keys))
    return drawn.size / (time.perf_counter() - started)


def one_more_run(index: SqlLineageIndex, population: list[str], drawn: np.ndarray) -> float:
    """Seconds `record_run` takes for one more training run into the full index."""
    subjects = [population[i] for i in drawn[0]]
    started = time.perf_counter()
    assert index.record_run("next-run", "fraud", "sha256:next", subjects) == len(subjects)
    return time.perf_counter() - started


def lookups(index: SqlLineageIndex, population: list[str], count: int,
            seed: int) -> list[float]:
    rng = random.Random(seed + 1)
    timings = []
    found = 0
    for subject in rng.choices(population, k=count):
        started = time.perf_counter()
        found += len(index.versions_for(subject))
        timings.append(time.perf_counter() - started)
    assert found > 0, "no lookup found a version"
    return timings


def sqlite_bulk(path: Path) -> Callable[[Iterator[tuple[str, int]]], None]:
    def load(rows: Iterator[tuple[str, int]]) -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO lineage_subjects (subject, run_key) VALUES (?, ?)", rows)
            connection.execute("COMMIT")
        finally:
            connection.close()
    return load


def postgres_bulk(conninfo: str) -> Callable[[Iterator[tuple[str, int]]], None]:
    def load(rows: Iterator[tuple[str, int]]) -> None:
        with psycopg.connect(conninfo) as connection:
            with connection.cursor() as cursor, cursor.copy(
                    "COPY lineage_subjects (subject, run_key) FROM STDIN") as copy:
                # base32 pseudonyms need no escaping in COPY's text format
                while chunk := list(itertools.islice(rows, 100_000)):
                    copy.write("".join(f"{subject}\t{key}\n" for subject, key in chunk))
            connection.commit()
            connection.execute("ANALYZE")  # what autovacuum does after a bulk load, now
    return load


def report(name: str, index: SqlLineageIndex,
           bulk: Callable[[Iterator[tuple[str, int]]], None], population: list[str],
           drawn: np.ndarray, lookup_count: int, seed: int) -> None:
    try:
        rate = fill(index, bulk, population, drawn)
        record_s = one_more_run(index, population, history(1, drawn.shape[1], len(population),
                                                           seed + 2))
        timings = sorted(lookups(index, population, lookup_count, seed))
    finally:
        index.close()
    median = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    verdict = "met" if p99 < TARGET_S and timings[-1] < TARGET_S else "NOT met"
    print(f"{name:<9} bulk fill {rate:,.0f} rows/s; record_run of {drawn.shape[1]:,} more "
          f"subjects {record_s:.1f} s")
    print(f"{'':<9} versions_for: median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
          f"max {timings[-1] * 1e3:.2f} ms ({len(timings):,} lookups); target < "
          f"{TARGET_S:.0f} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--subjects-per-run", type=int, default=50_000)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.subjects_per_run > args.population:
        parser.error("--subjects-per-run cannot exceed --population")
    backends = set(args.backends.split(","))
    # Sorted, so that sorting by index is sorting by pseudonym (see key_ordered_rows).
    population = sorted(pseudonyms(args.population))
    drawn = history(args.runs, args.subjects_per_run, args.population, args.seed)
    print(f"{args.runs:,} runs x {args.subjects_per_run:,} subjects = {drawn.size:,} "
          f"subject-run rows (from {args.population:,} pseudonyms)")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lineage.db"
            report("sqlite", SqliteLineageIndex(path), sqlite_bulk(path), population, drawn,
                   args.lookups, args.seed)
            size = sum(f.stat().st_size for f in Path(tmp).iterdir())
            print(f"{'':<9} file {size / 2**20:,.0f} MiB")
    if "postgres" in backends:
        with postgres() as conninfo:
            if conninfo is None:
                print("postgres  skipped: no server (set AGOGOSML_BENCH_POSTGRES or make "
                      "postgres)")
            else:
                report("postgres", PostgresLineageIndex(conninfo), postgres_bulk(conninfo),
                       population, drawn, args.lookups, args.seed)


if __name__ == "__main__":
    main()
