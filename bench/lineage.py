"""Subject lineage: "which model versions used subject X?" at 10 million subject-run rows
(issue 11's target: under 1 s).

Run with `python -m bench.lineage [--runs R] [--subjects-per-run S] [--population P]`.
Each backend gets a fresh index filled through the real API: R training runs
(`record_run`, one transaction each) of S subjects drawn from P pseudonyms (shaped like
agogosml.privacy's: a prefix and 26 base32 characters), each run registered as a model
version. Then `versions_for` for random subjects, timed one by one (median, p99, max).
The default is 200 runs x 50,000 subjects = 10,000,000 rows. PostgreSQL runs when a
server is available (AGOGOSML_BENCH_POSTGRES, or Debian's binaries: a throwaway server with
fsync on); `--backends sqlite` leaves it out.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agogosml.privacy.lineage import SqlLineageIndex
from agogosml.privacy.lineage.postgres import PostgresLineageIndex
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex
from bench.store import postgres

TARGET_S = 1.0


def pseudonyms(count: int) -> list[str]:
    return ["ps_" + base64.b32encode(hashlib.blake2b(i.to_bytes(8, "little"),
                                                      digest_size=16).digest())
            .decode("ascii").rstrip("=").lower() for i in range(count)]


def fill(index: SqlLineageIndex, population: list[str], runs: int, per_run: int,
         seed: int) -> float:
    """Records the runs and their versions; returns subject rows stored per second."""
    rng = random.Random(seed)
    started = time.perf_counter()
    stored = 0
    for run in range(runs):
        run_id = f"{run:032x}"
        stored += index.record_run(run_id, "fraud", f"sha256:{run:064x}",
                                   rng.sample(population, per_run))
        index.record_version(run_id, "fraud", str(run + 1))
    assert stored == runs * per_run, (stored, runs * per_run)
    return stored / (time.perf_counter() - started)


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


def report(name: str, open_index: Callable[[], SqlLineageIndex], args: argparse.Namespace,
           population: list[str]) -> None:
    index = open_index()
    try:
        rate = fill(index, population, args.runs, args.subjects_per_run, args.seed)
        timings = sorted(lookups(index, population, args.lookups, args.seed))
    finally:
        index.close()
    median = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    verdict = "met" if timings[-1] < TARGET_S else "NOT met"
    print(f"{name:<9} fill {rate:>9,.0f} rows/s   versions_for: median {median * 1e3:.2f} ms, "
          f"p99 {p99 * 1e3:.2f} ms, max {timings[-1] * 1e3:.2f} ms "
          f"({len(timings):,} lookups)   target < {TARGET_S:.0f} s: {verdict}")


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
    population = pseudonyms(args.population)
    print(f"{args.runs:,} runs x {args.subjects_per_run:,} subjects = "
          f"{args.runs * args.subjects_per_run:,} subject-run rows "
          f"(from {args.population:,} pseudonyms)")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lineage.db"
            report("sqlite", lambda: SqliteLineageIndex(path), args, population)
            print(f"{'':<9} file {sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20:,.0f}"
                  " MiB")
    if "postgres" in backends:
        with postgres() as conninfo:
            if conninfo is None:
                print("postgres  skipped: no server (set AGOGOSML_BENCH_POSTGRES or make "
                      "postgres)")
            else:
                report("postgres", lambda: PostgresLineageIndex(conninfo), args, population)


if __name__ == "__main__":
    main()
