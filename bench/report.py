"""Turning what a scenario saw on the output topic into figures, and printing them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.kafka_io import SeenRecord

THROUGHPUT_TARGET = 0.40
P99_TARGET_MS = 50.0
CPU_COLUMNS = ("input_reader", "app", "output_writer", "passthrough", "kafka", "bench")


@dataclass(frozen=True)
class Run:
    """One run of a scenario."""

    events: int
    """Distinct events that arrived on the output topic."""
    requested: int
    seconds: float
    rate: float
    duplicates: int = 0
    latencies_ms: Sequence[int] = ()
    cpu: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


def first_appends(records: Sequence[SeenRecord], wanted: set[str]) -> dict[str, SeenRecord]:
    """Per wanted id, its first copy on the output topic (at least once allows more)."""
    first: dict[str, SeenRecord] = {}
    for record in records:
        if record.id in wanted and (record.id not in first
                                    or record.timestamp_ms < first[record.id].timestamp_ms):
            first[record.id] = record
    return first


def duplicates(records: Sequence[SeenRecord], wanted: set[str]) -> int:
    copies = sum(1 for record in records if record.id in wanted)
    return copies - len({record.id for record in records if record.id in wanted})


def throughput(records: Sequence[SeenRecord], wanted: set[str]) -> tuple[int, float, float]:
    """(events, seconds, events/s) from the first output record to the last. The records
    appended at the very first instant started the clock, so they are not counted."""
    stamps = sorted(record.timestamp_ms for record in first_appends(records, wanted).values())
    if not stamps:
        return 0, 0.0, 0.0
    seconds = (stamps[-1] - stamps[0]) / 1000
    counted = sum(1 for stamp in stamps if stamp > stamps[0])
    return len(stamps), seconds, counted / seconds if seconds > 0 else 0.0


def latencies(records: Sequence[SeenRecord], wanted: set[str],
              input_times: Mapping[str, int] | None = None) -> list[int]:
    """Milliseconds from each event's input append to its first output append. The input
    time is the one the record carries, else looked up in `input_times` (by id)."""
    result = []
    for event_id, record in first_appends(records, wanted).items():
        started = record.carried_ms
        if started is None:
            if input_times is None:
                raise ValueError(f"{event_id} carries no input time and none was given")
            started = input_times[event_id]
        result.append(record.timestamp_ms - started)
    return sorted(result)


def percentile(ordered: Sequence[int], share: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Scenario:
    name: str
    runs: list[Run]

    @property
    def median(self) -> Run:
        """The run with the median throughput (the lower middle one for an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.rate)
        return ordered[(len(ordered) - 1) // 2]


def _total(metrics: Mapping[str, float], name: str) -> float:
    """A sample's value summed over its label sets (`name` or `name{...}`)."""
    return sum(value for key, value in metrics.items()
               if key == name or key.startswith(f"{name}{{"))


def _mean(metrics: Mapping[str, float], name: str, scale: float = 1.0) -> str:
    count = _total(metrics, f"{name}_count")
    if not count:
        return "-"
    return f"{_total(metrics, f'{name}_sum') / count * scale:.1f}"


def _latency_cells(run: Run) -> str:
    if not run.latencies_ms:
        return f"{'-':>6}{'-':>6}{'-':>6}{'-':>6}"
    values = run.latencies_ms
    return "".join(f"{cell:>6}" for cell in (percentile(values, 0.50), percentile(values, 0.95),
                                              percentile(values, 0.99), values[-1]))


def results_table(scenarios: Sequence[Scenario]) -> str:
    lines = [f"{'scenario':<36}{'events':>7}{'seconds':>9}{'events/s':>10}"
             f"{'p50':>6}{'p95':>6}{'p99':>6}{'max':>6}  runs (events/s)",
             "-" * 110]
    for scenario in scenarios:
        run = scenario.median
        runs = " / ".join(f"{r.rate:.0f}" for r in scenario.runs)
        events = f"{run.events}{'' if run.events == run.requested else '*'}"
        lines.append(f"{scenario.name:<36}{events:>7}{run.seconds:>9.2f}{run.rate:>10.0f}"
                     f"{_latency_cells(run)}  {runs}")
    lines.append("latency columns: ms from the input record's append (its Kafka timestamp) to "
                 "the output record's append (LogAppendTime); '-' = not measured (pre-loaded)")
    short = [f"{s.name}: {' / '.join(str(r.events) for r in s.runs)} of {s.runs[0].requested}"
             for s in scenarios if any(r.events < r.requested for r in s.runs)]
    if short:
        lines.append("* stopped at the run time limit; the rate counts what arrived by then ("
                     + "; ".join(short) + ")")
    return "\n".join(lines)


def diagnostics_table(scenarios: Sequence[Scenario]) -> str:
    """Per scenario (median run): the services' own view (means from /metrics) and the CPU
    each process used while records flowed, as a share of one core."""
    header = (f"{'scenario':<36}{'batch':>6}{'fwd ms':>8}{'pred ms':>8}{'wrt ms':>8}"
              f"{'sink ms':>8}{'fail/dl':>8}{'dups':>6}  CPU (1.0 = one core)")
    lines = [header, "-" * 110]
    for scenario in scenarios:
        run = scenario.median
        m = run.metrics
        cpu = " ".join(f"{name.replace('output_writer', 'writer')}={run.cpu[name]:.2f}"
                       for name in CPU_COLUMNS if name in run.cpu)
        failures = m.get("input_reader:agogosml_reader_forward_failures_total")
        dead = _total(m, "input_reader:agogosml_reader_records_dead_lettered_total")
        lines.append(
            f"{scenario.name:<36}{_mean(m, 'input_reader:agogosml_reader_batch_size'):>6}"
            f"{_mean(m, 'input_reader:agogosml_reader_forward_latency_seconds', 1000):>8}"
            f"{_mean(m, 'app:agogosml_app_predict_latency_seconds', 1000):>8}"
            f"{_mean(m, 'app:agogosml_app_forward_latency_seconds', 1000):>8}"
            f"{_mean(m, 'output_writer:agogosml_writer_sink_latency_seconds', 1000):>8}"
            f"{'-' if failures is None else f'{failures:.0f}/{dead:.0f}':>8}"
            f"{run.duplicates:>6}  {cpu}")
    lines += [
        "batch: mean records per reader->app request; fwd: reader->app->writer->Kafka round "
        "trip; pred: model call in the app;",
        "wrt: app->writer round trip; sink: writer's Kafka produce until acked (all means, ms);",
        "fail/dl: reader forward retries / records dead-lettered; dups: extra copies on the "
        "output topic",
    ]
    return "\n".join(lines)


def verdicts(baseline: Scenario, pipelines: Sequence[Scenario], baseline_paced: Scenario,
             pipeline_paced: Scenario) -> str:
    lines = []
    for pipeline in pipelines:
        ratio = pipeline.median.rate / baseline.median.rate
        met = "met" if ratio >= THROUGHPUT_TARGET else "NOT met"
        lines.append(f"throughput {pipeline.name} / {baseline.name}: {ratio:.1%} "
                     f"(target >= {THROUGHPUT_TARGET:.0%}: {met})")
    p99 = percentile(pipeline_paced.median.latencies_ms, 0.99)
    base_p99 = percentile(baseline_paced.median.latencies_ms, 0.99)
    met = "met" if p99 < P99_TARGET_MS else "NOT met"
    lines.append(f"p99 latency {pipeline_paced.name}: {p99} ms (target < {P99_TARGET_MS:.0f} ms:"
                 f" {met}); {baseline_paced.name}: {base_p99} ms")
    return "\n".join(lines)
