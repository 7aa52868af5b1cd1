"""Turning what a scenario saw on the output topic into figures, and printing them: the
throughput and latency tables, the services' own view, one line per target (met or not),
and the scale-out."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.kafka_io import SeenRecord

THROUGHPUT_TARGET = 0.70
"""The default batch's events/s over the raw pass-through's, medians of the same run."""
P99_TARGET_MS = 10.0
P99_BASELINE_FACTOR = 2.0
"""p99 at a steady 1,000 events/s: at most 10 ms, and at most 2x the pass-through's."""
P99_TARGET_RATE = 1_000.0
BATCH_ONE_TARGET = 1_000.0
"""events/s at batch size 1."""
SCORING_TARGET = 0.80
"""/v1/batches rows/s per core over the model's own predict's."""
ROLES = ("input_reader", "app", "output_writer", "passthrough", "kafka", "bench")
"""The processes whose CPU use is shown, in this order (`app.2` is the second app)."""
SATURATED = 0.85
"""A share of a core (or of the machine) from which it is counted as the bottleneck."""


@dataclass(frozen=True)
class Run:
    """One run of a scenario."""

    events: int
    """Distinct events counted (in the measured window, or sent when paced)."""
    seconds: float
    rate: float
    duplicates: int = 0
    short: bool = False
    """The output stopped before the window ended (the input topic ran out, or the run
    stalled): measured over the span there was."""
    latencies_ms: Sequence[int] = ()
    cpu: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    machine_cpu: float | None = None
    """Cores busy machine-wide over the window (this benchmark's processes and any other
    work: the machine may be shared)."""


def first_appends(records: Sequence[SeenRecord],
                  wanted: set[str] | None = None) -> dict[str, SeenRecord]:
    """Per id (every id, or only the `wanted` ones), its first copy on the output topic
    (at least once allows more)."""
    first: dict[str, SeenRecord] = {}
    for record in records:
        if wanted is not None and record.id not in wanted:
            continue
        if record.id not in first or record.timestamp_ms < first[record.id].timestamp_ms:
            first[record.id] = record
    return first


def duplicates(records: Sequence[SeenRecord], wanted: set[str] | None = None) -> int:
    kept = [record.id for record in records if wanted is None or record.id in wanted]
    return len(kept) - len(set(kept))


def windowed(records: Sequence[SeenRecord], window_s: float,
             not_before_ms: float = 0.0) -> tuple[int, float, float, bool]:
    """(events, seconds, events/s, short) over `window_s` seconds of output, from the first
    record appended to the output topic (or from `not_before_ms`, epoch ms, if that is
    later): the events whose first copy was appended after that instant and at most
    `window_s` later. If the output ends earlier (`short`), the rate is over the span there
    was."""
    stamps = sorted(record.timestamp_ms for record in first_appends(records).values())
    if not stamps or stamps[-1] <= not_before_ms:
        return 0, 0.0, 0.0, True
    start = max(float(stamps[0]), not_before_ms)
    end = start + window_s * 1000
    short = stamps[-1] < end
    seconds = (min(stamps[-1], end) - start) / 1000
    counted = sum(1 for stamp in stamps if start < stamp <= end)
    return counted, seconds, counted / seconds if seconds > 0 else 0.0, short


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
    def rate(self) -> float:
        """The median events/s over the runs."""
        return statistics.median(run.rate for run in self.runs)

    @property
    def low(self) -> float:
        return min(run.rate for run in self.runs)

    @property
    def high(self) -> float:
        return max(run.rate for run in self.runs)

    @property
    def median(self) -> Run:
        """The run with the median throughput (the lower middle one for an even count):
        the one whose CPU use and metrics are shown."""
        ordered = sorted(self.runs, key=lambda run: run.rate)
        return ordered[(len(ordered) - 1) // 2]

    def p99(self) -> int:
        return percentile(self.median.latencies_ms, 0.99)


def throughput_table(scenarios: Sequence[Scenario]) -> str:
    lines = [f"{'throughput (pre-loaded input)':<44}{'runs':>5}{'s/run':>7}{'median':>9}"
             f"{'min':>9}{'max':>9}{'spread':>8}  every run (events/s, in order)",
             "-" * 118]
    for scenario in scenarios:
        seconds = statistics.median(run.seconds for run in scenario.runs)
        spread = (scenario.high - scenario.low) / scenario.rate if scenario.rate else 0.0
        runs = " ".join(f"{run.rate:.0f}{'*' if run.short else ''}" for run in scenario.runs)
        lines.append(f"{scenario.name:<44}{len(scenario.runs):>5}{seconds:>7.1f}"
                     f"{scenario.rate:>9.0f}{scenario.low:>9.0f}{scenario.high:>9.0f}"
                     f"{spread:>8.0%}  {runs}")
    lines.append("events/s from the first record appended to the output topic over the "
                 "measured window (LogAppendTime); spread = (max - min) / median")
    if any(run.short for scenario in scenarios for run in scenario.runs):
        lines.append("* the output ended before the window did (input topic exhausted or "
                     "stalled): measured over the span there was")
    return "\n".join(lines)


def latency_table(scenarios: Sequence[tuple[Scenario, float]]) -> str:
    lines = [f"{'latency (paced input)':<44}{'rate':>7}{'sent/s':>8}{'events':>8}"
             f"{'p50':>6}{'p95':>6}{'p99':>6}{'max':>6}", "-" * 91]
    for scenario, rate in scenarios:
        run = scenario.median
        values = run.latencies_ms
        cells = "".join(f"{percentile(values, share):>6}" for share in (0.50, 0.95, 0.99))
        lines.append(f"{scenario.name:<44}{rate:>7.0f}{run.rate:>8.0f}{run.events:>8}"
                     f"{cells}{values[-1]:>6}")
    lines.append("ms from the input record's append (its Kafka timestamp) to the output "
                 "record's append (LogAppendTime); sent in groups every 10 ms")
    return "\n".join(lines)


def _total(metrics: Mapping[str, float], name: str) -> float:
    """A sample's value summed over its label sets (`name` or `name{...}`)."""
    return sum(value for key, value in metrics.items()
               if key == name or key.startswith(f"{name}{{"))


def _mean(metrics: Mapping[str, float], name: str, scale: float = 1.0) -> str:
    count = _total(metrics, f"{name}_count")
    if not count:
        return "-"
    return f"{_total(metrics, f'{name}_sum') / count * scale:.1f}"


def _role(label: str) -> str:
    return label.split(".", 1)[0]


def cpu_cells(cpu: Mapping[str, float]) -> str:
    """`reader=0.41 app=0.80 ... total=1.93`, the processes in ROLES order."""
    order = sorted(cpu, key=lambda label: (ROLES.index(_role(label))
                                           if _role(label) in ROLES else len(ROLES), label))
    cells = [f"{label.replace('output_writer', 'writer').replace('input_reader', 'reader')}"
             f"={cpu[label]:.2f}" for label in order]
    return " ".join([*cells, f"total={sum(cpu.values()):.2f}"])


def diagnostics_table(scenarios: Sequence[Scenario]) -> str:
    """Per scenario (median run): the services' own view (means from /metrics) and the CPU
    each process used while records flowed, as a share of one core."""
    header = (f"{'scenario (median run)':<44}{'batch':>6}{'fwd ms':>8}{'pred ms':>8}"
              f"{'wrt ms':>8}{'sink ms':>8}{'fail/dl':>8}{'dups':>6}  CPU (1.0 = one core)")
    lines = [header, "-" * 118]
    for scenario in scenarios:
        run = scenario.median
        m = run.metrics
        failures = _total(m, "input_reader:agogosml_reader_forward_failures_total")
        dead = _total(m, "input_reader:agogosml_reader_records_dead_lettered_total")
        fail = f"{failures:.0f}/{dead:.0f}" if m else "-"
        machine = _machine(run)
        lines.append(
            f"{scenario.name:<44}{_mean(m, 'input_reader:agogosml_reader_batch_size'):>6}"
            f"{_mean(m, 'input_reader:agogosml_reader_forward_latency_seconds', 1000):>8}"
            f"{_mean(m, 'app:agogosml_app_predict_latency_seconds', 1000):>8}"
            f"{_mean(m, 'app:agogosml_app_forward_latency_seconds', 1000):>8}"
            f"{_mean(m, 'output_writer:agogosml_writer_sink_latency_seconds', 1000):>8}"
            f"{fail:>8}{run.duplicates:>6}  {cpu_cells(run.cpu)}{machine}")
    lines += [
        "batch: mean records per reader->app request; fwd: reader->app->writer->Kafka round "
        "trip; pred: model call in the app;",
        "wrt: app->writer round trip; sink: writer's Kafka produce until acked (all means, ms);",
        "fail/dl: reader forward retries / records dead-lettered; dups: extra copies on the "
        "output topic; CPU while records flowed",
        "(total: the benchmark's processes; machine: every process on the machine, other "
        "work included)",
    ]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def paired_ratios(numerator: Scenario, denominator: Scenario) -> list[float]:
    """Run i over run i: the two scenarios' runs were interleaved, so each pair shared
    the machine's moment."""
    return [top.rate / bottom.rate for top, bottom in zip(numerator.runs, denominator.runs,
                                                          strict=False) if bottom.rate]


@dataclass(frozen=True)
class ScoringResult:
    """bench.scoring's figures (rows/s per CPU-second), by path name."""

    per_core: Mapping[str, float]
    baseline: str
    """The name of the model's own predict in `per_core`."""
    batches: str
    """The name of the app's /v1/batches path in `per_core`."""
    onnx: str | None = None
    """The name of the model's ONNX graph scored alone, when the version has one (the app
    then scores /v1/batches through it)."""


def verdicts(baseline: Scenario, default: Scenario, batch_one: Scenario,
             paced: Mapping[str, tuple[Scenario, Scenario]],
             scoring: ScoringResult | None) -> str:
    """One line per target of issue 13: met or not, the measured value and the baseline
    from the same run. `paced` maps 'rate' to (pass-through, pipeline) at that rate."""
    ratio = default.rate / baseline.rate
    pairs = paired_ratios(default, baseline)
    lines = [
        f"[{_met(ratio >= THROUGHPUT_TARGET)}] default batch >= {THROUGHPUT_TARGET:.0%} of the "
        f"raw pass-through: {ratio:.0%} ({default.rate:.0f} vs {baseline.rate:.0f} events/s, "
        f"medians; run by run {min(pairs):.0%}-{max(pairs):.0%})",
    ]
    key = f"{P99_TARGET_RATE:.0f}"
    if key in paced:
        base_paced, pipe_paced = paced[key]
        p99, base_p99 = pipe_paced.p99(), base_paced.p99()
        ok = p99 <= P99_TARGET_MS and p99 <= P99_BASELINE_FACTOR * base_p99
        lines.append(f"[{_met(ok)}] p99 at {key} events/s <= {P99_TARGET_MS:.0f} ms and <= "
                     f"{P99_BASELINE_FACTOR:.0f}x the pass-through's: {p99} ms (pass-through "
                     f"{base_p99} ms, so the bound is {min(P99_TARGET_MS, 2 * base_p99):.0f} ms)")
    lines.append(f"[{_met(batch_one.rate >= BATCH_ONE_TARGET)}] batch size 1 >= "
                 f"{BATCH_ONE_TARGET:.0f} events/s: {batch_one.rate:.0f} events/s (median; "
                 f"{batch_one.low:.0f}-{batch_one.high:.0f}; pass-through {baseline.rate:.0f}, "
                 f"default batch {default.rate:.0f})")
    if scoring is None:
        lines.append("[not measured] /v1/batches >= 80% of the model's own rows/s per core "
                     "(scoring was skipped)")
    else:
        own, app = scoring.per_core[scoring.baseline], scoring.per_core[scoring.batches]
        lines.append(f"[{_met(app / own >= SCORING_TARGET)}] /v1/batches >= "
                     f"{SCORING_TARGET:.0%} of the model's own rows/s per core: {app / own:.0%} "
                     f"({app:.0f} vs {own:.0f} rows per CPU-second of the pyfunc's predict)")
        if scoring.onnx is not None and scoring.onnx in scoring.per_core:
            graph = scoring.per_core[scoring.onnx]
            lines.append(f"   and against the version's ONNX graph scored alone (the app's fast "
                         f"path when the version is tagged parity): {app / graph:.0%} "
                         f"({graph:.0f} rows per CPU-second)")
    return "\n".join(lines)


def bottleneck(run: Run, cores: int) -> str:
    """Where the next bottleneck is, from the CPU each process used in `run`."""
    if not run.cpu:
        return "no CPU figures"
    total = sum(run.cpu.values())
    busiest = max(run.cpu, key=lambda label: run.cpu[label])
    by_role: dict[str, float] = {}
    for label, used in run.cpu.items():
        by_role[_role(label)] = by_role.get(_role(label), 0.0) + used
    shares = ", ".join(f"{role} {used:.2f}" for role, used in
                       sorted(by_role.items(), key=lambda item: -item[1]))
    if total >= SATURATED * cores:
        return (f"the machine: its processes use {total:.2f} of {cores} cores, so another "
                f"reader/app pair only takes CPU from the others (by role: {shares}); more "
                "throughput here needs cores, or less CPU per event in the biggest roles")
    if run.machine_cpu is not None and run.machine_cpu >= SATURATED * cores:
        return (f"the machine's CPU: {run.machine_cpu:.2f} of {cores} cores were busy, "
                f"{total:.2f} of them with the pipeline and broker (by role: {shares}), the "
                "rest with other work on this shared machine; another reader/app pair "
                "only competes for the same cores")
    if run.cpu[busiest] >= SATURATED:
        return (f"{busiest}, at {run.cpu[busiest]:.2f} of a core (machine {total:.2f} of "
                f"{cores}; by role: {shares})")
    return (f"no process and not the machine is saturated ({total:.2f} of {cores} cores; by "
            f"role: {shares}): the time goes to waiting (HTTP round trips, Kafka acks)")


def _machine(run: Run) -> str:
    return "" if run.machine_cpu is None else f" machine={run.machine_cpu:.2f}"


def scale_out(one: Scenario, two: Scenario, cores: int) -> str:
    pairs = paired_ratios(two, one)
    return "\n".join([
        f"scale-out on {cores} cores, 2-partition input topic, one writer:",
        f"  1 reader + 1 app:   {one.rate:>7.0f} events/s (median; {one.low:.0f}-{one.high:.0f})"
        f"  CPU {cpu_cells(one.median.cpu)}{_machine(one.median)}",
        f"  2 readers + 2 apps: {two.rate:>7.0f} events/s (median; {two.low:.0f}-{two.high:.0f})"
        f"  CPU {cpu_cells(two.median.cpu)}{_machine(two.median)}",
        f"  2 over 1: {two.rate / one.rate:.2f}x (run by run {min(pairs):.2f}-{max(pairs):.2f}x)",
        f"  next bottleneck with 1: {bottleneck(one.median, cores)}",
        f"  next bottleneck with 2: {bottleneck(two.median, cores)}",
    ])
