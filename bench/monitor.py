"""The monitor's ingest: scored events from a real Kafka topic into the embedded (SQLite)
store, with drift detection and live statistics on every stored batch — the whole path
the monitor service runs, in one process (issue 10's target: >= 20,000 events/s on one
core with the embedded store).

Run with `python -m bench.monitor [--events N] [--repeats R]`. N demo scored events (the
demo model's real probabilities, its 8 input features) are put on a topic once; each
repeat then consumes them all in a fresh consumer group into a fresh store, three ways,
interleaved: `fetch` (consume and commit only: the ceiling), `store` (parse and store)
and `monitor` (parse, store, drift and live statistics: what the service does). Figures
are events per CPU-second of this process (all its threads: the store writes in a worker
thread) and per wall second; medians over the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

from agogosml.localstack.broker import KafkaBroker
from agogosml.monitor.ingest import Ingestor
from agogosml.monitor.references import ReferenceProfiles
from agogosml.monitor.state import MonitorState
from agogosml.monitor.store import SqliteEventStore
from agogosml.monitor.store.base import AsyncEventStore, ScoredEvent
from agogosml.retry import Backoff
from agogosml.streaming.kafka import KafkaSource
from agogosml.streaming.topics import ensure_topics
from bench.drift import Model, reference
from bench.kafka_io import preload

TARGET_EVENTS_PER_S = 20_000
MODES = ("fetch", "store", "monitor")


def scored_values(model: Model, count: int) -> list[bytes]:
    from agogosml.demo.data import transactions

    frame = transactions(count, seed=23)
    features, probabilities = model.stream(frame)
    now_ms = time.time_ns() // 1_000_000
    values = []
    for n, (row, p) in enumerate(zip(features.to_dict("records"), probabilities, strict=True)):
        values.append(orjson.dumps({
            "id": f"tx-{n:09d}", "subject": f"c-{n % 2000}", "time": now_ms + n,
            "model": {"name": "demo", "version": "1"}, "prediction": int(p[1] >= 0.5),
            "scores": {"0": float(p[0]), "1": float(p[1])}, "scored_at": now_ms + n + 9,
            "features": {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}},
            option=orjson.OPT_SERIALIZE_NUMPY))
    return values


class NoStore:
    """Takes every batch and keeps nothing: the `fetch` mode's store."""

    def insert_events(self, events: list[ScoredEvent]) -> int:
        return len(events)

    def close(self) -> None:
        pass


async def ingest_all(bootstrap: str, topic: str, count: int, mode: str, model: Model,
                     workdir: Path) -> tuple[float, float]:
    """(events per CPU-second, events per wall second) to consume `count` events."""
    store = (SqliteEventStore(workdir / f"{uuid.uuid4().hex}.db") if mode != "fetch"
             else NoStore())
    async_store = AsyncEventStore(store)  # type: ignore[arg-type]
    state = MonitorState(async_store, ReferenceProfiles(lambda *_: model.profile))
    on_stored: Callable[[list[ScoredEvent]], None] | None = None
    if mode == "monitor":
        on_stored = state.on_stored
    source = KafkaSource(topic, f"bench-{uuid.uuid4().hex[:8]}",
                         {"bootstrap_servers": bootstrap})
    await source.start()
    ingestor = Ingestor(source, async_store, Backoff(), batch_max=2_000, on_stored=on_stored)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        fetched = 0
        while fetched < count:
            fetched += await ingestor.ingest_once()
            if mode == "monitor" and state.watches and not state.watches[("demo", "1")].profile:
                await state.tick()  # the version was just seen: load its profile (once)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await source.stop()
        store.close()
    if mode != "fetch":
        assert ingestor.counts.stored == count, (ingestor.counts, count)
    if mode == "monitor":
        assert state.watches[("demo", "1")].detector is not None
    return count / cpu, count / wall


async def run(bootstrap: str, workdir: Path, events: int,
              repeats: int) -> dict[str, list[tuple[float, float]]]:
    model = reference()
    values = scored_values(model, events)
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    topic = "bench.monitor.output"
    await ensure_topics({"bootstrap_servers": bootstrap}, [topic], 3)
    await preload(bootstrap, topic, values)
    for _ in range(repeats):
        for mode in MODES:
            results[mode].append(await ingest_all(bootstrap, topic, events, mode, model,
                                                  workdir))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agogosml-bench-monitor-") as directory:
        workdir = Path(directory)
        broker = KafkaBroker(workdir / "kafka")
        broker.start()
        try:
            results = asyncio.run(run(broker.bootstrap, workdir, args.events, args.repeats))
        finally:
            broker.stop()
    print(f"\nmonitor ingest: {args.events:,} scored events from Kafka, {args.repeats} "
          "interleaved repeats, medians (spread min-max)")
    print(f"  {'mode':<8} {'events/CPU-s':>14} {'events/wall-s':>14}   spread (CPU)")
    for mode in MODES:
        cpu = [c for c, _ in results[mode]]
        wall = [w for _, w in results[mode]]
        print(f"  {mode:<8} {statistics.median(cpu):>14,.0f} {statistics.median(wall):>14,.0f}"
              f"   {min(cpu):,.0f}-{max(cpu):,.0f}")
    monitor = statistics.median(c for c, _ in results["monitor"])
    fetch = statistics.median(c for c, _ in results["fetch"])
    verdict = "met" if monitor >= TARGET_EVENTS_PER_S else "NOT met"
    print(f"  target: >= {TARGET_EVENTS_PER_S:,} events/s on one core with the embedded store"
          f" -> {monitor:,.0f} ({verdict}); {monitor / fetch:.0%} of consuming alone")


if __name__ == "__main__":
    main()
