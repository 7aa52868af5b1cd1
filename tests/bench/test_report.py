"""The benchmark's arithmetic and its target lines, on made-up runs (no broker)."""

from __future__ import annotations

from bench.kafka_io import SeenRecord
from bench.pipeline import FULL, QUICK, parse_args
from bench.report import (
    Run,
    Scenario,
    ScoringResult,
    bottleneck,
    paired_ratios,
    verdicts,
    windowed,
)


def records(stamps: list[int]) -> list[SeenRecord]:
    return [SeenRecord(f"e{index}", None, stamp) for index, stamp in enumerate(stamps)]


def test_the_window_counts_first_copies_after_its_start() -> None:
    seen = records(list(range(1_000, 8_000, 10)))  # 100 events/s for 7 s
    seen.append(SeenRecord("e0", None, 5_000))  # a duplicate is not counted again
    counted, seconds, rate, short = windowed(seen, 5.0)
    assert (counted, seconds, rate, short) == (500, 5.0, 100.0, False)


def test_the_window_starts_when_the_group_settled() -> None:
    counted, _, _, short = windowed(records(list(range(1_000, 8_000, 10))), 5.0, 2_000.0)
    assert counted == 500
    assert not short


def test_output_that_ends_within_the_window_is_measured_over_its_span() -> None:
    counted, seconds, rate, short = windowed(records(list(range(1_000, 3_010, 10))), 5.0)
    assert short
    assert counted == 200
    assert seconds == 2.0
    assert rate == 100.0


def scenario(name: str, *rates: float, p99: int = 0) -> Scenario:
    return Scenario(name, [Run(1, 6.0, rate, latencies_ms=[p99] * 100) for rate in rates])


def test_one_line_per_target_met_or_not() -> None:
    base = scenario("pass-through", 100, 120, 80, 110, 90)
    default = scenario("default", 75, 80, 60, 77, 70)
    paced = {"1000": (scenario("b", 1, p99=4), scenario("p", 1, p99=9))}
    lines = verdicts(base, default, scenario("b1", 500, 1_100, 900), paced,
                     ScoringResult({"own": 100.0, "app": 79.0}, "own", "app")).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[met] default batch >= 70%")
    assert "75% (75 vs 100" in lines[0]
    assert lines[1].startswith("[NOT met] p99")
    assert "bound is 8 ms" in lines[1]
    assert lines[2].startswith("[NOT met] batch size 1")
    assert "900 events/s" in lines[2]
    assert lines[3].startswith("[NOT met] /v1/batches")
    assert "79%" in lines[3]
    assert paired_ratios(default, base)[:2] == [0.75, 80 / 120]


def test_the_bottleneck_is_the_machine_when_its_cores_are_busy() -> None:
    mine = Run(1, 6.0, 1.0, cpu={"app": 0.5, "input_reader": 0.3}, machine_cpu=1.9)
    assert bottleneck(mine, 2).startswith("the machine's CPU: 1.90 of 2")
    alone = Run(1, 6.0, 1.0, cpu={"app": 0.95, "input_reader": 0.3}, machine_cpu=1.3)
    assert bottleneck(alone, 2).startswith("app, at 0.95")


def test_quick_runs_are_short_and_the_full_ones_last_long_enough() -> None:
    quick, full = parse_args(["--quick"]), parse_args([])
    assert quick.reps == QUICK["reps"]
    assert quick.run_seconds == QUICK["run_seconds"]
    assert full.reps >= 5
    assert full.run_seconds >= 5
    assert full.rates == [1_000.0, 5_000.0]
    assert FULL["run_seconds"] >= 5
    assert parse_args(["--quick", "--reps", "3"]).reps == 3
