"""Event store ingest: scored events inserted per second, per backend (issue 10's target for
the embedded store: >= 20,000 events/s on one core).

Run with `python -m bench.store [--events N] [--batch B]`. Each backend gets a fresh store
and N demo-like scored events (8 input features, two class scores), inserted in batches of B,
each batch one transaction (executemany), as the monitor writes what it consumed before
committing its offsets. Then the same batches again: redeliveries, which must add nothing.
PostgreSQL runs when a server is available: AGOGOSML_BENCH_POSTGRES (a connection string),
else a throwaway local server if Debian's binaries are installed (`make postgres`), with
fsync on. Wall time and this process's CPU time are both reported.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agogosml.monitor.store import PostgresEventStore, ScoredEvent, SqliteEventStore
from agogosml.monitor.store.base import SqlEventStore

TARGET_EVENTS_PER_S = 20_000
T0 = 1_767_225_600_000


def scored_events(count: int, seed: int = 7) -> list[ScoredEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        p = rng.random()
        out.append(ScoredEvent(
            event_id=f"evt-{i:09d}", subject=f"card-{rng.randrange(10_000)}",
            event_time_ms=T0 + i, scored_at_ms=T0 + i + 3, model_name="demo",
            model_version="1", prediction=int(p > 0.5), scores={"0": 1 - p, "1": p},
            features={"amount": round(rng.lognormvariate(3, 1), 2), "hour": rng.randrange(24),
                      "distance_from_home_km": round(rng.expovariate(0.1), 1),
                      "transactions_last_24h": rng.randrange(20),
                      "merchant_category": rng.choice(["grocery", "jewelry", "travel"]),
                      "channel": rng.choice(["online", "pos"]),
                      "country": rng.choice(["DE", "NG", "US"]),
                      "card_present": rng.random() < 0.5},
            ingested_at_ms=T0 + i + 5))
    return out


def measure(store: SqlEventStore, events: list[ScoredEvent], batch: int) -> tuple[float, float]:
    """(events/s by wall time, events/s per CPU-second of this process), and checks counts."""
    batches = [events[i:i + batch] for i in range(0, len(events), batch)]
    wall, cpu = time.perf_counter(), time.process_time()
    new = sum(store.insert_events(b) for b in batches)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert new == len(events), (new, len(events))
    assert sum(store.insert_events(b) for b in batches) == 0, "a redelivery was stored"
    return len(events) / wall, len(events) / cpu


@contextmanager
def postgres() -> Iterator[str | None]:
    given = os.environ.get("AGOGOSML_BENCH_POSTGRES")
    if given:
        yield given
        return
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        yield None
        return
    from tests.monitor.postgres import PostgresServer, server_binaries

    server = PostgresServer(server_binaries(), fsync=True)
    try:
        server.start()
        yield server.create_database()
    finally:
        server.stop()


def report(name: str, open_store: Callable[[], SqlEventStore], events: list[ScoredEvent],
           batch: int) -> None:
    store = open_store()
    try:
        wall, cpu = measure(store, events, batch)
    finally:
        store.close()
    verdict = "meets" if wall >= TARGET_EVENTS_PER_S else "misses"
    print(f"{name:<10} {wall:>10,.0f} events/s (wall)  {cpu:>10,.0f} events/CPU-s  "
          f"{verdict} the {TARGET_EVENTS_PER_S:,}/s target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    events = scored_events(args.events)
    print(f"{args.events:,} scored events in batches of {args.batch:,}")
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", lambda: SqliteEventStore(Path(tmp) / "store.db"), events, args.batch)
    with postgres() as conninfo:
        if conninfo is None:
            print("postgres   skipped: no server (set AGOGOSML_BENCH_POSTGRES or make postgres)")
        else:
            report("postgres", lambda: PostgresEventStore(conninfo), events, args.batch)


if __name__ == "__main__":
    main()
