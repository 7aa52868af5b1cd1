"""Drift detection quality and cost on synthetic shifts of the demo data (issue 10, item 4).

Run with `python -m bench.drift`. The reference profile is built as a training run builds
it (`ReferenceProfile.build` on the training split of `transactions(20_000, seed=7)`,
logistic regression probabilities); live streams come from other seeds of the same
generator, scored by the same model, and feed one `DriftDetector` per stream (default
config but ARL0 12,000 for the whole detector — every feature, the prediction and the
predicted class together: the 10,000 target plus a margin, since the thresholds give
exactly ARL0 under the reference profile and a live stream is another sample).

What is shifted: each numeric feature in turn by 0.5 of its own standard deviation in its
own units (the target as written; an integer feature rounded), and, stricter, log(amount)
by 0.5 x 1.1 (amount is lognormal(3.5, 1.1): amount x e^{0.55}), the normal feature a
CUSUM's textbook figures presume. The new category is "crypto" replacing 5% of
merchant_category. Each stream first runs `--warmup` in-control events (the detector is in
its steady state when the shift starts, false alarms during the warm-up ignored), and a
detection is the first alarm *on the shifted feature* after the shift; the delay counts
the shifted events up to and including the alarming one. The false-alarm run length is
events / alarms of any statistic over in-control streams, with a 95% interval from the
spread of the per-stream counts, and the alarms per kind of chart against what the
thresholds promise. Cost: the median over `--cost-repeats` runs of process CPU seconds of
`update` in 1,000-event batches.

Every figure is measured twice in the same run, on the same streams: "now", the detector
as it ships (thresholds calibrated under the reference profile, see
`agogosml.monitor.drift.online`), and "baseline", the approach it replaced (charts for
shifts 0.5 and 0.1, thresholds from Siegmund's approximation and Lorden's bound at ARL0 x S
for each of the S statistics), both at the same configured ARL0.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agogosml.demo.data import NUMERIC_FEATURES, transactions
from agogosml.modelloop.dataset import DatasetSpec, resolve_schema, split_holdout
from agogosml.modelloop.estimators import build_pipeline
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.monitor.drift import (
    Alarm,
    DetectorConfig,
    DriftDetector,
    Statistic,
    cusum_threshold,
)

AMOUNT_LOG_SIGMA = 1.1
"""The generator's sigma of log(amount)."""
BATCH = 1_000


@dataclass(frozen=True)
class Model:
    profile: ReferenceProfile
    pipeline: Any
    features: list[str]

    def stream(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
        features = frame[self.features].reset_index(drop=True)
        return features, self.pipeline.predict_proba(features)


def reference(rows: int = 20_000, seed: int = 7) -> Model:
    frame = transactions(rows, seed)
    schema = resolve_schema(frame, DatasetSpec())
    split = split_holdout(frame, schema, 0.2, seed)
    pipeline = build_pipeline(schema, "logistic_regression", {}, seed)
    pipeline.fit(split.train_x, split.train_y)
    profile = ReferenceProfile.build(split.train_x, split.train_y, schema,
                                     pipeline.predict_proba(split.train_x))
    return Model(profile, pipeline, list(schema.features))


def shift_amount(frame: pd.DataFrame, sigmas: float) -> pd.DataFrame:
    return frame.assign(amount=frame["amount"] * np.exp(sigmas * AMOUNT_LOG_SIGMA))


def shift_feature(frame: pd.DataFrame, feature: str, sigmas: float,
                  sigma: float) -> pd.DataFrame:
    """The feature moved by `sigmas` of its own standard deviation, in its own units (an
    integer feature rounded, as the demo producer's drift does)."""
    moved = frame[feature] + sigmas * sigma
    if pd.api.types.is_integer_dtype(frame[feature]):
        moved = moved.round().astype(frame[feature].dtype)
    return frame.assign(**{feature: moved})


def new_category(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    merchant = frame["merchant_category"].to_numpy(dtype=object).copy()
    merchant[rng.random(len(frame)) < share] = "crypto"
    return frame.assign(merchant_category=merchant)


Build = Callable[[], DriftDetector]


def calibrated(profile: ReferenceProfile, config: DetectorConfig) -> Build:
    """The detector as it ships: thresholds calibrated under the reference profile."""
    return lambda: DriftDetector(profile, config)


def union_bound(profile: ReferenceProfile, arl0: float) -> Build:
    """The baseline: charts for shifts 0.5 and 0.1, each of the S one-sided statistics at
    ARL0 x S, numeric thresholds from Siegmund's approximation, category ones ln(ARL0 x S)
    (Lorden's bound)."""
    def build() -> DriftDetector:
        detector = DriftDetector(profile, DetectorConfig(arl0=arl0, shifts=(0.5, 0.1),
                                                         shift_budget=(0.5, 0.5)))
        each = arl0 * len(detector.statistics)
        detector.in_control_arl = np.full(len(detector.statistics), each)
        detector.thresholds = np.asarray([
            cusum_threshold(float(s.detail.split("=")[1]) / 2, each) if s.test == "cusum"
            else math.log(each) for s in detector.statistics])
        return detector
    return build


def feed(detector: DriftDetector, features: pd.DataFrame,
         probabilities: np.ndarray[Any, Any]) -> list[Alarm]:
    alarms: list[Alarm] = []
    for start in range(0, len(features), BATCH):
        alarms += detector.update(features.iloc[start:start + BATCH],
                                  probabilities[start:start + BATCH])
    return alarms


def delays(model: Model, build: Build, seeds: int, warmup: int, horizon: int,
           feature: str, change: Any, pool_seed: int) -> list[float]:
    """Per stream: events after the shift until the first alarm on `feature` (inf: none)."""
    length = warmup + horizon
    pool = transactions(seeds * length, pool_seed).reset_index(drop=True)
    position = np.arange(len(pool)) % length
    shifted = change(pool[position >= warmup].reset_index(drop=True))
    live = pd.concat([pool[position < warmup].reset_index(drop=True), shifted])
    features, probabilities = model.stream(live)
    before = np.flatnonzero(position < warmup)
    found: list[float] = []
    for seed in range(seeds):
        rows = np.concatenate([np.arange(seed * warmup, (seed + 1) * warmup),
                               before.size + np.arange(seed * horizon, (seed + 1) * horizon)])
        alarms = feed(build(), features.iloc[rows], probabilities[rows])
        hits = [alarm.index - warmup + 1 for alarm in alarms
                if alarm.statistic.feature == feature and alarm.index >= warmup]
        found.append(float(min(hits)) if hits else float("inf"))
    return found


@dataclass(frozen=True)
class FalseAlarms:
    events: int
    per_stream: list[int]
    by_chart: Counter[str]
    """Alarms per kind of chart ("cusum up δ=0.4", "share", ...)."""
    by_feature: Counter[str]
    expected: dict[str, float]
    """Alarms per kind of chart the detector's `in_control_arl` promise."""

    @property
    def run_length(self) -> float:
        total = sum(self.per_stream)
        return self.events / total if total else float("inf")

    def interval(self) -> tuple[float, float]:
        """95% interval of the run length, from the spread of the per-stream counts (alarms
        cluster, so a Poisson interval would be too narrow)."""
        total = sum(self.per_stream)
        spread = 1.96 * math.sqrt(len(self.per_stream) * statistics.variance(self.per_stream))
        low, high = total - spread, total + spread
        return self.events / high, self.events / low if low > 0 else float("inf")


def chart_kind(statistic: Statistic) -> str:
    return f"cusum {statistic.detail}" if statistic.test == "cusum" else "share"


def false_alarms(model: Model, build: Build, streams: int, length: int,
                 pool_seed: int) -> FalseAlarms:
    pool = transactions(streams * length, pool_seed)
    features, probabilities = model.stream(pool)
    by_chart: Counter[str] = Counter()
    by_feature: Counter[str] = Counter()
    per_stream: list[int] = []
    for stream in range(streams):
        rows = slice(stream * length, (stream + 1) * length)
        alarms = feed(build(), features.iloc[rows], probabilities[rows])
        per_stream.append(len(alarms))
        by_chart.update(chart_kind(alarm.statistic) for alarm in alarms)
        by_feature.update(alarm.statistic.feature for alarm in alarms)
    detector = build()
    expected: dict[str, float] = {}
    for statistic, arl in zip(detector.statistics, detector.in_control_arl, strict=True):
        kind = chart_kind(statistic)
        expected[kind] = expected.get(kind, 0.0) + streams * length / arl
    return FalseAlarms(streams * length, per_stream, by_chart, by_feature, expected)


def cost(model: Model, build: Build, events: int, repeats: int, pool_seed: int) -> float:
    """Median over `repeats` runs of events per process-CPU second of `update`."""
    features, probabilities = model.stream(transactions(events, pool_seed))
    batches = [(features.iloc[s:s + BATCH], probabilities[s:s + BATCH])
               for s in range(0, events, BATCH)]
    rates = []
    for _ in range(repeats):
        detector = build()
        started = time.process_time()
        for batch, probs in batches:
            detector.update(batch, probs)
        rates.append(events / (time.process_time() - started))
    return statistics.median(rates)


def line(name: str, figure: str, baseline: str, target: str = "",
         met: bool | None = None) -> None:
    verdict = "" if met is None else "met" if met else "NOT met"
    print(f"{name:<44} {figure:>10} {baseline:>10}   {target:<12} {verdict}")


def within(found: list[float], limit: int) -> float:
    return sum(delay <= limit for delay in found) / len(found)


def detection(name: str, found: dict[str, list[float]], limit: int) -> None:
    now, before = (within(found[key], limit) for key in ("calibrated", "union bound"))
    line(f"{name}: P(detected <= {limit:,})", f"{now:.3f}", f"{before:.3f}", ">= 0.95",
         now >= 0.95)
    line("  median delay (events)", f"{statistics.median(found['calibrated']):.0f}",
         f"{statistics.median(found['union bound']):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--arl-streams", type=int, default=40)
    parser.add_argument("--arl-length", type=int, default=100_000)
    parser.add_argument("--arl0", type=float, default=12_000.0,
                        help="configured ARL0: the 10,000 target plus a margin for the "
                        "reference's sampling error and the measurement's noise")
    parser.add_argument("--cost-repeats", type=int, default=5)
    args = parser.parse_args()
    config = DetectorConfig(arl0=args.arl0)
    model = reference()
    builds = {"calibrated": calibrated(model.profile, config),
              "union bound": union_bound(model.profile, args.arl0)}
    detector = builds["calibrated"]()
    print(f"reference: {model.profile.rows} training rows; detector: "
          f"{len(detector.statistics)} one-sided statistics, ARL0 {config.arl0:,.0f} overall, "
          f"shifts {config.shifts}, budget {config.shift_budget} + {config.category_budget}")
    line("", "now", "baseline", "target")

    def run(horizon: int, feature: str, change: Any, pool_seed: int) -> dict[str, list[float]]:
        return {name: delays(model, build, args.seeds, args.warmup, horizon, feature, change,
                             pool_seed) for name, build in builds.items()}

    # The target as written: a feature moved by half its standard deviation, in its units.
    sigmas = transactions(20_000, 7)[list(NUMERIC_FEATURES)].std()
    for offset, feature in enumerate(NUMERIC_FEATURES):
        detection(f"0.5 sigma {feature}", run(
            400, feature, lambda f, name=feature: shift_feature(f, name, 0.5, sigmas[name]),
            110 + offset), 100)
    # Stricter: amount is lognormal, so half a sigma of log(amount) is a far smaller move.
    detection("0.5 sigma log(amount) (stricter)",
              run(400, "amount", lambda f: shift_amount(f, 0.5), 101), 100)
    detection("0.1 sigma log(amount)",
              run(10_000, "amount", lambda f: shift_amount(f, 0.1), 102), 5_000)
    detection("new category at 5%", run(2_000, "merchant_category",
                                        lambda f: new_category(f, 0.05, 1), 103), 500)
    quiet = {name: false_alarms(model, build, args.arl_streams, args.arl_length, 104)
             for name, build in builds.items()}
    now, before = quiet["calibrated"], quiet["union bound"]

    def shown(result: FalseAlarms) -> str:
        return f">{result.events:,}" if result.run_length == float("inf") \
            else f"{result.run_length:,.0f}"

    line("no shift: events per false alarm", shown(now), shown(before), ">= 10,000",
         now.run_length >= 10_000)
    for name, result in quiet.items():
        low, high = result.interval()
        print(f"  {name}: {sum(result.per_stream)} false alarms in {result.events:,} events "
              f"(95% interval {low:,.0f} to {high:,.0f} events per alarm); by feature "
              f"{dict(result.by_feature.most_common())}")
    for name, result in quiet.items():
        print(f"  {name}, per kind of chart (alarms seen / promised by its thresholds):")
        for kind, expected in sorted(result.expected.items()):
            print(f"    {kind:<20} {result.by_chart.get(kind, 0):>5} / {expected:7.1f}")
    rates = {name: cost(model, build, 100_000, args.cost_repeats, 105)
             for name, build in builds.items()}
    line("cost: events/s per core (median)", f"{rates['calibrated']:,.0f}",
         f"{rates['union bound']:,.0f}", "> 20,000", rates["calibrated"] > 20_000)
    print(f"  ({args.cost_repeats} runs of 100,000 events in {BATCH}-event batches, process "
          f"CPU time of update, all {len(detector.statistics)} statistics)")


if __name__ == "__main__":
    main()
