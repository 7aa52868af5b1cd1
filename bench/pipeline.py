"""Throughput and latency of the agogosml pipeline, against a raw Kafka pass-through.

Run with `make bench` (`python -m bench.pipeline`). Everything runs on this machine: one
single-node KRaft Kafka broker, MLflow on SQLite with the demo model trained and
registered, and per scenario fresh 3-partition topics with fresh child processes.

Scenarios
  baseline pass-through   bench.passthrough: consumer group -> idempotent acks=all producer,
                          offsets committed after the produce is acknowledged; no HTTP, no model
  pipeline, batch size 1  input_reader -> app -> output_writer, AGOGOSML_READER_BATCH_MAX_SIZE=1
  pipeline, default batch the same with the reader's default batch size
  ..., PII policy         the same with the demo's PII policy in the reader (make run's)

Throughput: N demo events are loaded into the input topic first; then the consumer side
starts, and the rate is counted from the first record appended to the output topic to
the last (output timestamps, the topic being LogAppendTime), after every one of the N ids
was seen there. Start-up is therefore not counted. A run still incomplete after
`--run-limit` seconds is measured over the events that arrived by then (and flagged), so
that a slow pipeline cannot stretch the benchmark. Each throughput scenario runs `--reps`
times, interleaved, and the median run is reported.

Latency: with the consumer side running and warmed up (200 events through it), events
are produced at a steady `--rate` (a group every 10 ms) for `--seconds`. An event's
latency is its output record's append time minus its input record's Kafka timestamp
(which the pipeline carries as the event's "time"; for the pass-through it is read back
from the input topic). Reported as p50 / p95 / p99 / max in ms.

Also reported per scenario: the services' own view (means from their /metrics) and the
CPU each process used while records flowed. The machine may be shared; check the load
average printed with the results before trusting small differences.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

import orjson

from agogosml.demo.data import events
from agogosml.localstack.broker import KAFKA_VERSION, KafkaBroker
from agogosml.localstack.stack import privacy_policy
from bench.kafka_io import (
    SeenRecord,
    TopicCollector,
    Topics,
    create_topics,
    preload,
    produce_paced,
    raw_event,
    scored_event,
)
from bench.procs import CpuSampler
from bench.report import (
    Run,
    Scenario,
    diagnostics_table,
    duplicates,
    latencies,
    results_table,
    throughput,
)
from bench.report import verdicts as verdict_lines
from bench.stack import (
    ConsumerSide,
    Infrastructure,
    PassThrough,
    Pipeline,
    forget_service_settings,
    start_infrastructure,
)

WARMUP_EVENTS = 200
WARMUP_SEED = 5
EVENT_SEED = 11
OUTPUT_TIMEOUT_S = 180.0


@dataclass(frozen=True, eq=False)
class Kind:
    """What consumes the input topic: the pass-through, or the pipeline with these reader
    settings."""

    label: str
    slug: str
    reader_settings: Mapping[str, str] | None = None

    @property
    def is_baseline(self) -> bool:
        return self.reader_settings is None

    def decode(self, value: bytes | None, timestamp_ms: int) -> SeenRecord:
        return (raw_event if self.is_baseline else scored_event)(value, timestamp_ms)

    def side(self, infra: Infrastructure, topics: Topics, log_dir: Path) -> ConsumerSide:
        if self.reader_settings is None:
            return PassThrough(infra, topics, log_dir)
        return Pipeline(infra, topics, log_dir, self.reader_settings)


BASELINE = Kind("baseline pass-through", "baseline")
BATCH_ONE = Kind("pipeline, batch size 1", "batch1", {"AGOGOSML_READER_BATCH_MAX_SIZE": "1"})
DEFAULT_BATCH = Kind("pipeline, default batch", "pipeline", {})
# The demo's PII policy as make run and the chart apply it; keys from the environment (a
# fixed bench key: the figures, not the pseudonyms, are what this run is for).
BENCH_KEY = base64.b64encode(b"agogosml-bench-pseudonym-key-32b").decode()
PRIVACY = Kind("pipeline, default batch, PII policy", "privacy", {
    "AGOGOSML_READER_PRIVACY_POLICY_PATH": str(privacy_policy()),
    "AGOGOSML_PII_PSEUDONYM_KEY": BENCH_KEY,
})


@dataclass(frozen=True)
class Workload:
    """Encoded demo events (unique transaction ids); each scenario takes the first n."""

    values: list[bytes]
    ids: list[str]
    warmup_values: list[bytes]
    warmup_ids: set[str]

    @classmethod
    def make(cls, count: int) -> Workload:
        items = events(count, seed=EVENT_SEED)
        warmup = events(WARMUP_EVENTS, seed=WARMUP_SEED)
        return cls([orjson.dumps(item) for item in items],
                   [item["transaction_id"] for item in items],
                   [orjson.dumps(item) for item in warmup],
                   {item["transaction_id"] for item in warmup})

    def first(self, count: int) -> tuple[list[bytes], set[str]]:
        return self.values[:count], set(self.ids[:count])


class Bench:
    """Runs scenarios on one broker and MLflow, each on fresh topics and processes."""

    def __init__(self, infra: Infrastructure, workload: Workload, workdir: Path,
                 args: argparse.Namespace) -> None:
        self.infra = infra
        self.bootstrap = infra.broker.bootstrap
        self.workload = workload
        self.workdir = workdir
        self.args = args
        self._runs = 0

    def _log_dir(self, kind: Kind) -> Path:
        self._runs += 1
        return self.workdir / "logs" / f"{self._runs:02d}-{kind.slug}"

    def _sampler(self, side: ConsumerSide) -> CpuSampler:
        def pids() -> dict[str, int]:
            found = {**side.pids(), "bench": os.getpid()}
            if self.infra.broker.process is not None:
                found["kafka"] = self.infra.broker.process.pid
            return found
        return CpuSampler(pids)

    def throughput(self, kind: Kind, count: int) -> Run:
        values, wanted = self.workload.first(count)
        topics = Topics.fresh(kind.slug)
        asyncio.run(_create_and_load(self.bootstrap, topics, values))
        side = kind.side(self.infra, topics, self._log_dir(kind))
        with self._sampler(side) as sampler:
            try:
                side.start()
                records = asyncio.run(_collect(self.bootstrap, topics.output, kind, wanted,
                                               self.args.run_limit, side.check_alive))
                metrics = side.metrics()
            finally:
                side.stop()
        arrived, seconds, rate = throughput(records, wanted)
        if arrived < 2:
            raise RuntimeError(f"{kind.label}: {arrived} of {count} events arrived within "
                               f"{self.args.run_limit:.0f} s")
        stamps = [record.timestamp_ms for record in records]
        return Run(arrived, count, seconds, rate, duplicates(records, wanted),
                   cpu=sampler.usage(min(stamps), max(stamps)), metrics=metrics)

    def latency(self, kind: Kind) -> Run:
        values, wanted = self.workload.first(round(self.args.rate * self.args.seconds))
        topics = Topics.fresh(f"{kind.slug}-paced")
        asyncio.run(create_topics(self.bootstrap, topics))
        side = kind.side(self.infra, topics, self._log_dir(kind))
        with self._sampler(side) as sampler:
            try:
                side.start()
                paced = asyncio.run(self._paced(kind, topics, values, wanted, side, sampler))
                metrics = side.metrics()
            finally:
                side.stop()
        return Run(len(values), len(values), len(values) / paced.rate, paced.rate,
                   duplicates(paced.records, wanted),
                   latencies(paced.records, wanted, paced.input_times),
                   sampler.usage(paced.started_ms, paced.ended_ms), metrics)

    async def _paced(self, kind: Kind, topics: Topics, values: list[bytes], wanted: set[str],
                     side: ConsumerSide, sampler: CpuSampler) -> Paced:
        await preload(self.bootstrap, topics.input, self.workload.warmup_values)
        async with TopicCollector(self.bootstrap, topics.output, kind.decode) as output:
            await output.until_ids(self.workload.warmup_ids, OUTPUT_TIMEOUT_S, side.check_alive)
            started_ms = sampler.mark()
            rate = await produce_paced(self.bootstrap, topics.input, values, self.args.rate)
            ended_ms = sampler.mark()
            records = await output.until_ids(wanted, OUTPUT_TIMEOUT_S, side.check_alive)
        input_times = None
        if kind.is_baseline:  # the copies do not carry their input time: read it back
            async with TopicCollector(self.bootstrap, topics.input, raw_event) as source:
                read = await source.until_ids(wanted, OUTPUT_TIMEOUT_S, side.check_alive)
            input_times = {record.id: record.timestamp_ms for record in read}
        return Paced(records, rate, input_times, started_ms, ended_ms)


@dataclass(frozen=True)
class Paced:
    records: list[SeenRecord]
    rate: float
    input_times: dict[str, int] | None
    started_ms: float
    ended_ms: float


async def _create_and_load(bootstrap: str, topics: Topics, values: Sequence[bytes]) -> None:
    await create_topics(bootstrap, topics)
    await preload(bootstrap, topics.input, values)


async def _collect(bootstrap: str, topic: str, kind: Kind, wanted: set[str], limit_s: float,
                   poll: Callable[[], None]) -> list[SeenRecord]:
    async with TopicCollector(bootstrap, topic, kind.decode) as output:
        return await output.until_ids(wanted, limit_s, poll, partial_ok=True)


def run_all(bench: Bench, args: argparse.Namespace, clock: Callable[[], str]) -> str:
    """Every scenario, throughput repetitions interleaved (so that a noisy moment does not
    hit one scenario only); returns the report."""
    counts = {BASELINE: args.events, DEFAULT_BATCH: args.events, PRIVACY: args.events,
              BATCH_ONE: args.events_batch1}
    found: dict[Kind, list[Run]] = {kind: [] for kind in counts}
    for rep in range(1, args.reps + 1):
        for kind, count in counts.items():
            run = bench.throughput(kind, count)
            found[kind].append(run)
            print(f"{clock()} {kind.label}, run {rep}/{args.reps}: {run.events} events in "
                  f"{run.seconds:.2f} s = {run.rate:.0f} events/s", flush=True)
    paced: dict[Kind, Run] = {}
    for kind in (BASELINE, DEFAULT_BATCH):
        paced[kind] = run = bench.latency(kind)
        print(f"{clock()} {kind.label} at {args.rate:.0f}/s: {run.events} events, "
              f"max latency {run.latencies_ms[-1]} ms", flush=True)
    loaded = {kind: Scenario(kind.label, runs) for kind, runs in found.items()}
    steady = {kind: Scenario(f"{kind.label} @ {args.rate:.0f}/s", [run])
              for kind, run in paced.items()}
    rows = [*loaded.values(), *steady.values()]
    verdicts = verdict_lines(loaded[BASELINE], [loaded[DEFAULT_BATCH], loaded[PRIVACY],
                                                loaded[BATCH_ONE]],
                             steady[BASELINE], steady[DEFAULT_BATCH])
    return "\n\n".join([results_table(rows), verdicts, diagnostics_table(rows)])


def machine() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}  nproc={os.cpu_count()} "
            f"(usable {len(os.sched_getaffinity(0))})  load average {load}\n"
            f"{platform.platform()}  Python {platform.python_version()}  "
            f"Kafka {KAFKA_VERSION} (single node, KRaft)")


def busy_note() -> str:
    """A warning when, before the benchmark starts, other work keeps the CPUs busy."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load <= cpus:
        return ""
    return (f"\nnote: load average {load:.1f} on {cpus} CPUs: other work is running, the "
            "figures are disturbed (compare with a quiet run before concluding)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline",
                                     description="pipeline vs raw Kafka pass-through")
    parser.add_argument("--reps", type=int, default=3, help="runs per throughput scenario")
    parser.add_argument("--events", type=int, default=20_000,
                        help="pre-loaded events (baseline, default batch)")
    parser.add_argument("--events-batch1", type=int, default=2_000,
                        help="pre-loaded events at batch size 1")
    parser.add_argument("--run-limit", type=float, default=30.0,
                        help="seconds a throughput run may take once started; a slower run "
                             "is measured over the events that arrived by then")
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s when paced")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced sending time")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, broker data) also on success")
    return parser


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(workdir: Path, args: argparse.Namespace, clock: Callable[[], str]) -> str:
    broker = KafkaBroker(workdir / "kafka")
    try:
        workload = Workload.make(max(args.events, args.events_batch1,
                                     round(args.rate * args.seconds)))
        infra = start_infrastructure(workdir, broker)
        print(f"{clock()} Kafka on {broker.bootstrap}, model {infra.model_uri}", flush=True)
        return run_all(Bench(infra, workload, workdir, args), args, clock)
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on `kill` as on Ctrl-C
    forget_service_settings()
    began = time.monotonic()

    def clock() -> str:
        return f"[{time.monotonic() - began:5.0f}s]"

    print(f"agogosml pipeline benchmark\n{machine()}{busy_note()}\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="agogosml-bench-"))
    logging.basicConfig(filename=workdir / "bench.log", level=logging.WARNING)
    keep = True  # for the logs, should anything fail
    try:
        report = _run(workdir, args, clock)
        keep = args.keep
    except KeyboardInterrupt:
        keep = args.keep
        print("interrupted; every process the benchmark started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if keep:
            print(f"work directory (logs, broker data) kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{report}\n\nfinished {machine()}\ntotal wall time "
          f"{time.monotonic() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
