"""Throughput and latency of the agogosml pipeline, against a raw Kafka pass-through, with
one line per performance target (issue 13): met or not.

Run with `make bench` (`python -m bench.pipeline`, 6-11 minutes on 2 cores; `--quick`
for short runs, about 3-4). Everything runs on this machine: one single-node KRaft Kafka
broker, MLflow on SQLite with the demo model trained and registered, and per run fresh
output topics, a fresh consumer group and fresh child processes. Every topic has 2
partitions.

Scenarios
  baseline pass-through   bench.passthrough: consumer group -> idempotent acks=all producer,
                          offsets committed after the produce is acknowledged; no HTTP, no model
  pipeline, default batch input_reader -> app -> output_writer, the reader's default batch size
  pipeline, batch size 1  the same with AGOGOSML_READER_BATCH_MAX_SIZE=1
  ..., 2 readers + 2 apps the default batch with two readers (one consumer group, one
                          partition each), each in front of its own app, one writer
  ..., PII policy         (with --privacy) the demo's PII policy in the reader (make run's)

Throughput is measured by time. One input topic is loaded with demo events (unique
transaction ids) and read from its beginning by every run, each with its own consumer
group. Its size comes from a calibration run of the pass-through (not reported): enough
for the fastest scenario to run the whole window with headroom. A run's rate counts the
events whose first copy was appended to the output topic within `--run-seconds` (>= 5 s)
of the first output record (append times: the output topic is LogAppendTime), so start-up
is not counted. Every scenario runs `--reps` (>= 5) times, interleaved (so that a noisy
moment of the shared machine does not hit one scenario only); the median and the spread
(min-max) are printed, and ratios also run by run (run i of one over run i of the other).

Latency: with the consumer side running and warmed up (200 events through it), events
are produced at a steady rate (a group every 10 ms) for `--seconds`, at each of `--rates`
(1,000 and 5,000 events/s). An event's latency is its output record's append time minus its
input record's Kafka timestamp (which the pipeline carries as the event's "time"; for the
pass-through it is read back from the input topic). Reported as p50 / p95 / p99 / max.

Scoring: bench.scoring as a child process on the same registered model: rows per
CPU-second of /v1/batches and /predict against the model's own predict (and of the ONNX
graph when the model version has one).

Also reported per scenario: the services' own view (means from their /metrics) and the
CPU each process used while records flowed, from which the scale-out section says where
the next bottleneck is. The machine may be shared; check the load average printed with
the results and the run-by-run spread before trusting small differences.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from agogosml.demo.data import events
from agogosml.localstack.broker import KAFKA_VERSION, KafkaBroker
from agogosml.localstack.stack import privacy_policy
from bench.kafka_io import (
    PARTITIONS,
    POLL_INTERVAL_S,
    SeenRecord,
    TopicCollector,
    Topics,
    create_topics,
    group_stable,
    preload,
    produce_paced,
    raw_event,
    scored_event,
)
from bench.procs import CpuSampler
from bench.report import (
    Run,
    Scenario,
    ScoringResult,
    diagnostics_table,
    duplicates,
    latencies,
    latency_table,
    scale_out,
    throughput_table,
    windowed,
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
BASE_EVENTS = 50_000
"""Distinct demo events generated; beyond them, copies with a suffixed transaction id."""
LOAD_CHUNK = 50_000
OUTPUT_TIMEOUT_S = 180.0
FIRST_OUTPUT_TIMEOUT_S = 120.0
"""How long a run may take to start and append its first output record."""
WINDOW_MARGIN_S = 1.0
"""Waited beyond the window, so that every record appended within it is there."""
CALIBRATION_S = 2.0
SETTLING_S = 5.0
"""Allowed for what is consumed before the window starts (the group settling: a second
reader joins seconds after the first one started on both partitions)."""
HEADROOM = 2.5
"""The input topic holds the calibrated rate x (settling + window + margin) x this: the
calibration runs on a cold broker, and the pass-through later runs up to twice as fast."""


@dataclass(frozen=True, eq=False)
class Kind:
    """What consumes the input topic: the pass-through, or the pipeline with these reader
    settings (and this many reader + app pairs)."""

    label: str
    slug: str
    reader_settings: Mapping[str, str] | None = None
    instances: int = 1

    @property
    def members(self) -> int:
        """Members of the consumer group reading the input topic."""
        return self.instances

    @property
    def is_baseline(self) -> bool:
        return self.reader_settings is None

    def decode(self, value: bytes | None, timestamp_ms: int) -> SeenRecord:
        return (raw_event if self.is_baseline else scored_event)(value, timestamp_ms)

    def side(self, infra: Infrastructure, topics: Topics, log_dir: Path) -> ConsumerSide:
        if self.reader_settings is None:
            return PassThrough(infra, topics, log_dir)
        return Pipeline(infra, topics, log_dir, self.reader_settings, self.instances)


BASELINE = Kind("baseline pass-through", "baseline")
DEFAULT_BATCH = Kind("pipeline, default batch", "pipeline", {})
BATCH_ONE = Kind("pipeline, batch size 1", "batch1", {"AGOGOSML_READER_BATCH_MAX_SIZE": "1"})
SCALED = Kind("pipeline, default batch, 2 readers + 2 apps", "scaled", {}, instances=2)
# The demo's PII policy as make run and the chart apply it; keys from the environment (a
# fixed bench key: the figures, not the pseudonyms, are what this run is for).
BENCH_KEY = base64.b64encode(b"agogosml-bench-pseudonym-key-32b").decode()
PRIVACY = Kind("pipeline, default batch, PII policy", "privacy", {
    "AGOGOSML_READER_PRIVACY_POLICY_PATH": str(privacy_policy()),
    "AGOGOSML_PII_PSEUDONYM_KEY": BENCH_KEY,
})


class Workload:
    """Encoded demo events with unique transaction ids, the i-th always the same: the
    first BASE_EVENTS generated, the rest copies of them under suffixed ids."""

    def __init__(self, distinct: int) -> None:
        self._base = events(max(1, min(distinct, BASE_EVENTS)), seed=EVENT_SEED)
        warmup = events(WARMUP_EVENTS, seed=WARMUP_SEED)
        self.warmup_values = [orjson.dumps(item) for item in warmup]
        self.warmup_ids = {str(item["transaction_id"]) for item in warmup}

    def slice(self, start: int, stop: int) -> tuple[list[bytes], list[str]]:
        values, ids = [], []
        for index in range(start, stop):
            copy, position = divmod(index, len(self._base))
            item = self._base[position]
            if copy:
                item = {**item, "transaction_id": f"{item['transaction_id']}-{copy}"}
            values.append(orjson.dumps(item))
            ids.append(str(item["transaction_id"]))
        return values, ids

    def first(self, count: int) -> tuple[list[bytes], set[str]]:
        values, ids = self.slice(0, count)
        return values, set(ids)


class Bench:
    """Runs scenarios on one broker and MLflow, each run with fresh processes."""

    def __init__(self, infra: Infrastructure, workload: Workload, workdir: Path,
                 args: argparse.Namespace) -> None:
        self.infra = infra
        self.bootstrap = infra.broker.bootstrap
        self.workload = workload
        self.workdir = workdir
        self.args = args
        self.input_topic = f"bench.load.{uuid.uuid4().hex[:8]}.input"
        self.loaded = 0
        self._runs = 0
        self._machine_cpu: float | None = None

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

    def load(self, count: int) -> None:
        """Make the shared input topic hold (at least) `count` events."""
        if not self.loaded:
            topics = Topics(self.input_topic, f"{self.input_topic}.unused",
                            f"{self.input_topic}.unused-dl", "")
            asyncio.run(create_topics(self.bootstrap, topics))
        for start in range(self.loaded, count, LOAD_CHUNK):
            values, _ = self.workload.slice(start, min(count, start + LOAD_CHUNK))
            asyncio.run(preload(self.bootstrap, self.input_topic, values))
        self.loaded = max(self.loaded, count)

    def calibrate(self) -> float:
        """Load a first share of the input, time the pass-through on it (the run is not
        reported; it also warms the broker up), and load as much as the window needs."""
        self.load(self.args.calibration_events)
        run = self.timed(BASELINE, CALIBRATION_S, settled=False)
        need = math.ceil(run.rate * (SETTLING_S + self.args.run_seconds + WINDOW_MARGIN_S)
                         * HEADROOM)
        self.load(min(max(need, self.loaded), self.args.max_events))
        return run.rate

    def timed(self, kind: Kind, window_s: float, settled: bool = True) -> Run:
        """One throughput run: `window_s` seconds of output from the shared input topic,
        from when the consumer group is stable (or, not `settled`, from the first output)."""
        topics = Topics.fresh(kind.slug, self.input_topic)
        asyncio.run(create_topics(self.bootstrap, topics))
        side = kind.side(self.infra, topics, self._log_dir(kind))
        with self._sampler(side) as sampler:
            try:
                side.start()
                settled_ms = asyncio.run(self._wait_window(kind, topics, side, window_s))
                metrics = side.metrics()
            finally:
                side.stop()
        records = asyncio.run(_read_all(self.bootstrap, topics.output, kind))
        if not settled:
            settled_ms = 0.0
        counted, seconds, rate, short = windowed(records, window_s, settled_ms)
        if counted < 2:
            raise RuntimeError(f"{kind.label}: {counted} events in the window")
        start_ms = max(settled_ms, min(record.timestamp_ms for record in records))
        return Run(counted, seconds, rate, duplicates(records), short,
                   cpu=sampler.usage(start_ms, start_ms + seconds * 1000), metrics=metrics,
                   machine_cpu=self._machine_cpu)

    async def _wait_window(self, kind: Kind, topics: Topics, side: ConsumerSide,
                           window_s: float) -> float:
        """Until output flows and the consumer group is stable (all its members joined,
        no rebalance under way: with two readers the second one's joining moves a
        partition), then the window (and a margin), or until every loaded event is out;
        return when the window could start (epoch ms). Only the output's end offsets and
        the group's state are read meanwhile."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            async with TopicCollector(self.bootstrap, topics.output, kind.decode) as output:
                deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT_S
                while not (await output.total()
                           and await group_stable(admin, topics.group, kind.members)):
                    side.check_alive()
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{kind.label}: no output, or no stable group of "
                                           f"{kind.members}, after "
                                           f"{FIRST_OUTPUT_TIMEOUT_S:.0f} s")
                    await asyncio.sleep(POLL_INTERVAL_S)  # polling end offsets, group state
                settled_ms, busy_before = time.time() * 1000, busy_seconds()
                await self._window(output, side, window_s)
                self._machine_cpu = ((busy_seconds() - busy_before)
                                     / (time.time() - settled_ms / 1000))
        finally:
            await admin.close()
        return settled_ms

    async def _window(self, output: TopicCollector, side: ConsumerSide,
                      window_s: float) -> None:
        until = time.monotonic() + window_s + WINDOW_MARGIN_S
        while time.monotonic() < until and await output.total() < self.loaded:
            side.check_alive()
            await asyncio.sleep(POLL_INTERVAL_S)  # the window's duration

    def latency(self, kind: Kind, rate: float) -> Run:
        values, wanted = self.workload.first(round(rate * self.args.seconds))
        topics = Topics.fresh(f"{kind.slug}-paced")
        asyncio.run(create_topics(self.bootstrap, topics))
        side = kind.side(self.infra, topics, self._log_dir(kind))
        with self._sampler(side) as sampler:
            try:
                side.start()
                paced = asyncio.run(self._paced(kind, topics, values, wanted, side, rate))
                cpu = sampler.usage(paced.started_ms, paced.ended_ms)
                metrics = side.metrics()
            finally:
                side.stop()
        return Run(len(values), len(values) / paced.rate, paced.rate,
                   duplicates(paced.records, wanted),
                   latencies_ms=latencies(paced.records, wanted, paced.input_times),
                   cpu=cpu, metrics=metrics, machine_cpu=self._machine_cpu)

    async def _paced(self, kind: Kind, topics: Topics, values: list[bytes], wanted: set[str],
                     side: ConsumerSide, rate: float) -> Paced:
        await preload(self.bootstrap, topics.input, self.workload.warmup_values)
        async with TopicCollector(self.bootstrap, topics.output, kind.decode) as output:
            await output.until_ids(self.workload.warmup_ids, OUTPUT_TIMEOUT_S, side.check_alive)
            started_ms, busy_before = time.time() * 1000, busy_seconds()
            achieved = await produce_paced(self.bootstrap, topics.input, values, rate)
            ended_ms = time.time() * 1000
            self._machine_cpu = (busy_seconds() - busy_before) / ((ended_ms - started_ms) / 1000)
            records = await output.until_ids(wanted, OUTPUT_TIMEOUT_S, side.check_alive)
        input_times = None
        if kind.is_baseline:  # the copies do not carry their input time: read it back
            async with TopicCollector(self.bootstrap, topics.input, raw_event) as source:
                read = await source.until_ids(wanted, OUTPUT_TIMEOUT_S, side.check_alive)
            input_times = {record.id: record.timestamp_ms for record in read}
        return Paced(records, achieved, input_times, started_ms, ended_ms)

    def scoring(self) -> tuple[ScoringResult, str]:
        """bench.scoring on this run's model, as a child process: its figures and table."""
        log = self.workdir / "logs" / "scoring.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as stderr:
            done = subprocess.run(
                [sys.executable, "-m", "bench.scoring", "--json",
                 "--model-uri", self.infra.model_uri, "--tracking-uri", self.infra.tracking_uri,
                 "--batches", str(self.args.scoring_requests),
                 "--reps", str(self.args.scoring_reps)],
                stdout=subprocess.PIPE, stderr=stderr, check=False, timeout=900)
        if done.returncode:
            raise RuntimeError(f"bench.scoring failed ({done.returncode}); see {log}")
        found = orjson.loads(done.stdout.splitlines()[-1])
        return (ScoringResult(found["per_core"], found["baseline"], found["batches"],
                              found.get("onnx")),
                str(found["table"]))


def busy_seconds() -> float:
    """CPU-seconds spent machine-wide (every core, every process) since boot, from
    /proc/stat: everything but idle and iowait."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Paced:
    records: list[SeenRecord]
    rate: float
    input_times: dict[str, int] | None
    started_ms: float
    ended_ms: float


async def _read_all(bootstrap: str, topic: str, kind: Kind) -> list[SeenRecord]:
    async with TopicCollector(bootstrap, topic, kind.decode) as output:
        return await output.read_all()


def run_all(bench: Bench, args: argparse.Namespace, clock: Callable[[], str]) -> str:
    """Every scenario, throughput repetitions interleaved (so that a noisy moment does not
    hit one scenario only), then the paced runs and scoring; returns the report."""
    calibrated = bench.calibrate()
    print(f"{clock()} calibration: pass-through {calibrated:.0f} events/s over "
          f"{CALIBRATION_S:.0f} s; the input topic holds {bench.loaded} events", flush=True)
    kinds = [BASELINE, DEFAULT_BATCH, BATCH_ONE, *([SCALED] if args.scale_out else []),
             *([PRIVACY] if args.privacy else [])]
    found: dict[Kind, list[Run]] = {kind: [] for kind in kinds}
    for rep in range(1, args.reps + 1):
        for kind in kinds:
            run = bench.timed(kind, args.run_seconds)
            found[kind].append(run)
            print(f"{clock()} {kind.label}, run {rep}/{args.reps}: {run.events} events in "
                  f"{run.seconds:.2f} s = {run.rate:.0f} events/s"
                  f"{' (output ended early)' if run.short else ''}", flush=True)
    paced: dict[str, tuple[Scenario, Scenario]] = {}
    rows: list[tuple[Scenario, float]] = []
    for rate in args.rates:
        pair = []
        for kind in (BASELINE, DEFAULT_BATCH):
            run = bench.latency(kind, rate)
            print(f"{clock()} {kind.label} at {rate:.0f}/s: {run.events} events, p99 "
                  f"{sorted(run.latencies_ms)[math.ceil(0.99 * len(run.latencies_ms)) - 1]} ms",
                  flush=True)
            pair.append(Scenario(f"{kind.label} @ {rate:.0f}/s", [run]))
            rows.append((pair[-1], rate))
        paced[f"{rate:.0f}"] = (pair[0], pair[1])
    scoring, scoring_table = None, "scoring: skipped (--no-scoring)"
    if args.scoring:
        scoring, scoring_table = bench.scoring()
        print(f"{clock()} scoring done", flush=True)
    loaded = {kind: Scenario(kind.label, runs) for kind, runs in found.items()}
    sections = [
        f"calibration: pass-through {calibrated:.0f} events/s; input topic of {bench.loaded} "
        f"events, {PARTITIONS} partitions; window {args.run_seconds:.1f} s per run, {args.reps} "
        "interleaved runs per scenario",
        throughput_table(list(loaded.values())),
        latency_table(rows),
        "targets (issue 13), each against the baseline of this same run:\n" + verdict_lines(
            loaded[BASELINE], loaded[DEFAULT_BATCH], loaded[BATCH_ONE], paced, scoring),
    ]
    if args.scale_out:
        sections.append(scale_out(loaded[DEFAULT_BATCH], loaded[SCALED],
                                  len(os.sched_getaffinity(0))))
    sections += [diagnostics_table([*loaded.values(), *(row for row, _ in rows)]),
                 scoring_table]
    return "\n\n".join(sections)


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


FULL = {"reps": 5, "run_seconds": 6.0, "seconds": 10.0, "calibration_events": 60_000,
        "scoring_requests": 60, "scoring_reps": 3}
QUICK = {"reps": 2, "run_seconds": 2.0, "seconds": 3.0, "calibration_events": 20_000,
         "scoring_requests": 20, "scoring_reps": 1}
"""--quick: short runs (a minute or two with start-up), for tests and a first look."""


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline",
                                     description="pipeline vs raw Kafka pass-through")
    parser.add_argument("--quick", action="store_true",
                        help="short runs: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--reps", type=int, help=f"interleaved runs per throughput scenario "
                        f"(default {FULL['reps']})")
    parser.add_argument("--run-seconds", type=float,
                        help=f"measured window of a throughput run (default "
                             f"{FULL['run_seconds']})")
    parser.add_argument("--rates", type=_rates, default=[1_000.0, 5_000.0],
                        help="events/s of the paced runs, comma-separated (default 1000,5000)")
    parser.add_argument("--seconds", type=float,
                        help=f"paced sending time (default {FULL['seconds']})")
    parser.add_argument("--calibration-events", type=int,
                        help="events loaded before the calibration run")
    parser.add_argument("--max-events", type=int, default=1_500_000,
                        help="the most events the input topic is loaded with")
    parser.add_argument("--scoring-requests", type=int, help="bench.scoring --batches")
    parser.add_argument("--scoring-reps", type=int, help="bench.scoring --reps")
    parser.add_argument("--no-scoring", dest="scoring", action="store_false",
                        help="skip bench.scoring (and its target line)")
    parser.add_argument("--no-scale-out", dest="scale_out", action="store_false",
                        help="skip the 2 readers + 2 apps scenario")
    parser.add_argument("--privacy", action="store_true",
                        help="also the default batch with the demo's PII policy")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, broker data) also on success")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(workdir: Path, args: argparse.Namespace, clock: Callable[[], str]) -> str:
    broker = KafkaBroker(workdir / "kafka")
    try:
        workload = Workload(max(args.calibration_events,
                                round(max(args.rates) * args.seconds)))
        infra = start_infrastructure(workdir, broker)
        print(f"{clock()} Kafka on {broker.bootstrap}, model {infra.model_uri}", flush=True)
        return run_all(Bench(infra, workload, workdir, args), args, clock)
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
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
