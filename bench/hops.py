"""What the two HTTP hops cost: reader -> app -> writer and back, one batch at a time.

The real reader, app and writer run each in its own process, as deployed, with nothing
else in the way: the source is in memory, the model is a stand-in
that answers at once, the writer's sink accepts everything. A round trip is from the
source handing the batch out to its offsets being committed, so it covers validation,
encoding, both hops, the writer's checks and the answers back.

    python -m bench.hops                      # this tree
    python -m bench.hops --baseline DIR       # and DIR's agogosml (e.g. `git archive` of
                                              # an older commit), interleaved, same run;
                                              # repeatable, each named by its folder
    python -m bench.hops --profile 500        # cProfile of this tree at one batch size

Every measurement runs in a fresh child process; trees alternate, so a busy machine
weighs on both alike. Medians, with the 90th percentile.

Measured on 2 shared cores (5 rounds; before: the tree at ada5bdc, with adaptive batching
but none of the hop changes), median / p90 ms and CPU ms per round trip:

    batch 1:    5.96 / 7.69, CPU 7.09  ->  4.25 / 5.79, CPU 5.63
    batch 17:   6.84 / 8.66, CPU 7.40  ->  5.18 / 6.91, CPU 6.21
    batch 500: 23.49 / 30.04, CPU 29.29 -> 22.40 / 28.90, CPU 25.73

Per request, a client (with a stub server in its process): httpx ~1.0-1.2 ms of CPU,
~0.6-0.75 ms once a missing sniffio fails fast, httpcore's pool ~0.45 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import uvicorn
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agogosml.envelope import Event, ModelRef, ScoredEvent
from agogosml.localstack.broker import free_port
from agogosml.retry import Backoff
from agogosml.services.app.model import LoadedModel
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.scoring import BatchResult, Scorer
from agogosml.services.app.service import create_app
from agogosml.services.input_reader.deadletters import DeadLetterWriter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.pipeline import BatchPolicy, InputReader
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.streaming.base import DrainHook, OutRecord, PartitionKey, Position, SourceRecord
from agogosml.web.auth import Credentials
from agogosml.web.client import BatchClient

SIZES = (1, 17, 500)
TOKEN = SecretStr("hops-bench-pipeline-token-0123456789")
MODEL = ModelRef("hops", "1")


def payload(n: int) -> dict[str, Any]:
    """A record shaped like the demo's transactions: eight inputs, an id and a subject."""
    return {"transaction_id": f"tx-{n:08d}", "customer_id": f"c{n % 977}",
            "amount": 12.5 + n % 300, "merchant_category": "grocery", "hour": n % 24,
            "country": "DE", "channel": "online", "card_present": n % 2 == 0,
            "customer_age": 20 + n % 60, "prior_transactions": n % 40}


class StandInScorer(Scorer):
    """Answers at once: a prediction, two scores and the inputs as features per event."""

    async def score(self, model: LoadedModel, events: list[Event]) -> BatchResult:
        now_ms = int(time.time() * 1000)
        return BatchResult([
            ScoredEvent(id=event.id, time_ms=event.time_ms, subject=event.subject,
                        model=MODEL, prediction=0, scores={"0": 0.75, "1": 0.25},
                        scored_at_ms=now_ms,
                        features={name: value for name, value in event.payload.items()
                                  if name not in ("transaction_id", "customer_id")})
            for event in events], [])


class NullSink:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, records: Sequence[OutRecord]) -> None:
        pass

    async def is_ready(self) -> bool:
        return True


class OnDemandSource:
    """Hands out the records `offer` made available; `committed` resolves on each commit."""

    def __init__(self) -> None:
        self.ready: list[SourceRecord] = []
        self.offered = asyncio.Event()
        self.committed = asyncio.Event()

    def offer(self, records: list[SourceRecord]) -> None:
        self.ready = records
        self.committed.clear()
        self.offered.set()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def set_drain_hook(self, hook: DrainHook) -> None:
        pass

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        if not self.ready:
            try:
                await asyncio.wait_for(self.offered.wait(), timeout_s)
            except TimeoutError:
                return []
        records, self.ready = self.ready[:max_records], self.ready[max_records:]
        if not self.ready:
            self.offered.clear()
        return records

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        self.committed.set()

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    async def is_ready(self) -> bool:
        return True

    async def lag(self) -> Mapping[PartitionKey, int]:
        return {}


def serve(role: str, port: int, writer_url: str) -> None:
    """The writer, or the app in front of the writer at `writer_url`, in this process."""
    pipeline = Credentials(TOKEN)
    if role == "writer":
        app = create_writer(NullSink(), CollectorRegistry(), pipeline)
    else:
        app = create_app(ModelHolder(LoadedModel(ref=MODEL, pyfunc=None, signature=None,
                                                 outputs=())),
                         BatchClient(f"{writer_url}/v1/batches", 10.0, token=TOKEN),
                         CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
                         pipeline=pipeline, scorer=StandInScorer())
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


@contextmanager
def serving(role: str, writer_url: str = "") -> Iterator[tuple[str, int]]:
    """`role` in a process of its own, as it is deployed; yields its URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = multiprocessing.get_context("spawn").Process(target=serve,
                                                           args=(role, port, writer_url))
    process.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the {role} did not start")
        time.sleep(0.05)  # polling the server's liveness probe
    try:
        yield url, cast(int, process.pid)
    finally:
        process.terminate()
        process.join(10)


def records(size: int, start: int) -> list[SourceRecord]:
    return [SourceRecord(orjson.dumps({"id": f"e{n}", **payload(n)}),
                         Position("hops", "0", n), 1_700_000_000_000 + n)
            for n in range(start, start + size)]


async def round_trips(app_url: str, size: int, max_size: int, repeats: int,
                      pids: Sequence[int]) -> tuple[list[float], float]:
    """The wall time of each round trip, and the CPU time all of them cost the reader and
    the processes `pids` together."""
    source = OnDemandSource()
    backoff = Backoff(initial_s=0.01, max_s=0.05)
    reader = InputReader(
        source=source, app_client=BatchClient(f"{app_url}/v1/batches", 10.0, token=TOKEN),
        dead_letters=DeadLetterWriter(NullSink(), backoff),
        validator=RecordValidator(None, 256 * 1024, "id", "customer_id", None),
        metrics=ReaderMetrics(CollectorRegistry()), policy=BatchPolicy(max_size=max_size),
        backoff=backoff, progress=ProgressWatch(600, 600))
    await reader.start()
    seconds: list[float] = []
    batches = [records(size, start) for start in range(0, size * repeats, size)]
    cpu = time.process_time() + sum(map(cpu_seconds, pids))
    try:
        for batch in batches:
            started = time.perf_counter()
            source.offer(batch)
            await asyncio.wait_for(source.committed.wait(), 30)
            seconds.append(time.perf_counter() - started)
        cpu = time.process_time() + sum(map(cpu_seconds, pids)) - cpu
    finally:
        await reader.stop()
    return seconds, cpu


def repeats_for(size: int) -> int:
    return 300 if size < 100 else 100


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(sizes: Sequence[int], max_size: int | None, profile: bool) -> dict[str, Any]:
    """Per batch size, the round trips' wall times and the CPU time one round trip costs
    the three services together."""
    results: dict[str, Any] = {}
    with serving("writer") as (writer_url, writer), serving("app", writer_url) as (app_url, app):
        for size in sizes:
            asyncio.run(round_trips(app_url, size, max_size or size, 20, ()))  # warm up
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            wall, cpu = asyncio.run(round_trips(app_url, size, max_size or size,
                                                repeats_for(size), (app, writer)))
            results[str(size)] = {"wall": wall, "cpu": cpu / len(wall)}
            if profiler is not None:
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(45)
    return results


def run_child(tree: Path, sizes: Sequence[int], max_size: int | None) -> dict[str, Any]:
    """One measurement in a fresh process on `tree`'s agogosml (this file is run by path
    from a neutral directory, so only PYTHONPATH says which agogosml is imported)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child",
               "--sizes", ",".join(map(str, sizes))]
    if max_size is not None:
        command += ["--max-size", str(max_size)]
    done = subprocess.run(command, cwd=tempfile.gettempdir(), capture_output=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    answer: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return answer


def ms(values: list[float], quantile: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="a tree holding an older agogosml (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--max-size", type=int,
                        help="the reader's batch_max_size (default: each batch size, so "
                             "every batch is full and never lingers)")
    parser.add_argument("--profile", type=int, metavar="SIZE")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.child or args.profile:
        found = worker([args.profile] if args.profile else sizes, args.max_size,
                       bool(args.profile))
        print(orjson.dumps(found).decode())
        return
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here} | {tree.name: tree.resolve() for tree in args.baseline}
    samples: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            for size, found in run_child(tree, sizes, args.max_size).items():
                samples.setdefault((name, size), []).extend(found["wall"])
                cpu.setdefault((name, size), []).append(found["cpu"])
    print(f"round trip reader -> app -> writer -> commit; {args.rounds} rounds, reader "
          f"batch_max_size {args.max_size or 'the batch size'}; CPU: the three processes' "
          "per round trip, median of the rounds")
    print(f"{'batch size':>10} {'tree':>12} {'median ms':>9} {'p90 ms':>7} {'CPU ms':>7} "
          f"{'CPU µs/event':>12}")
    for size in map(str, sizes):
        for name in trees:
            values = samples[(name, size)]
            spent = statistics.median(cpu[(name, size)])
            print(f"{size:>10} {name:>12} {ms(values, 0.5):>9} {ms(values, 0.9)} "
                  f"{spent * 1000:7.2f} {spent / int(size) * 1e6:12.1f}")


if __name__ == "__main__":
    main()
