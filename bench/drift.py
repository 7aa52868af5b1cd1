"""Drift detection quality and cost on synthetic shifts of the demo data (issue 10, item 4).

Run with `python -m bench.drift`. The reference profile is built as a training run builds
it (`ReferenceProfile.build` on the training split of `transactions(20_000, seed=7)`,
logistic regression probabilities); live streams come from other seeds of the same
generator, scored by the same model, and feed one `DriftDetector` per stream (default
config: ARL0 10,000 for the whole detector — every feature, the prediction and the
predicted class together).

What is shifted: `amount` is lognormal(3.5, 1.1), so "a d-sigma mean shift" is a shift of
log(amount) by d x 1.1 (amount x e^{1.1 d}); the normal feature the targets presume. The
new category is "crypto" replacing 5% of merchant_category. Each stream first runs
`--warmup` in-control events (the detector is in its steady state when the shift starts,
false alarms during the warm-up ignored), and a detection is the first alarm *on the
shifted feature* after the shift; the delay counts the shifted events up to and including
the alarming one. The false-alarm run length is events / alarms of any statistic over
in-control streams. Cost: process CPU seconds of `update` in 1,000-event batches.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agogosml.demo.data import transactions
from agogosml.modelloop.dataset import DatasetSpec, resolve_schema, split_holdout
from agogosml.modelloop.estimators import build_pipeline
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.monitor.drift import DetectorConfig, DriftDetector

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


def new_category(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    merchant = frame["merchant_category"].to_numpy(dtype=object).copy()
    merchant[rng.random(len(frame)) < share] = "crypto"
    return frame.assign(merchant_category=merchant)


def feed(detector: DriftDetector, features: pd.DataFrame,
         probabilities: np.ndarray[Any, Any]) -> list[tuple[int, str]]:
    alarms: list[tuple[int, str]] = []
    for start in range(0, len(features), BATCH):
        raised = detector.update(features.iloc[start:start + BATCH],
                                 probabilities[start:start + BATCH])
        alarms += [(alarm.index, alarm.statistic.feature) for alarm in raised]
    return alarms


def delays(model: Model, config: DetectorConfig, seeds: int, warmup: int, horizon: int,
           feature: str, change: Any, pool_seed: int) -> list[float]:
    """Per stream: events after the shift until the first alarm on `feature` (inf: none)."""
    length = warmup + horizon
    pool = transactions(seeds * length, pool_seed).reset_index(drop=True)
    position = np.arange(len(pool)) % length
    shifted = change(pool[position >= warmup].reset_index(drop=True))
    live = pd.concat([pool[position < warmup].reset_index(drop=True), shifted])
    features, probabilities = model.stream(live)
    before = np.flatnonzero(position < warmup)
    after = np.flatnonzero(position >= warmup)
    found: list[float] = []
    for seed in range(seeds):
        rows = np.concatenate([np.arange(seed * warmup, (seed + 1) * warmup),
                               before.size + np.arange(seed * horizon, (seed + 1) * horizon)])
        detector = DriftDetector(model.profile, config)
        alarms = feed(detector, features.iloc[rows], probabilities[rows])
        hits = [index - warmup + 1 for index, name in alarms
                if name == feature and index >= warmup]
        found.append(float(min(hits)) if hits else float("inf"))
    assert after.size == seeds * horizon
    return found


def false_alarms(model: Model, config: DetectorConfig, streams: int, length: int,
                 pool_seed: int) -> tuple[int, int, Counter[str]]:
    pool = transactions(streams * length, pool_seed)
    features, probabilities = model.stream(pool)
    total = 0
    by_feature: Counter[str] = Counter()
    for stream in range(streams):
        rows = slice(stream * length, (stream + 1) * length)
        alarms = feed(DriftDetector(model.profile, config), features.iloc[rows],
                      probabilities[rows])
        total += len(alarms)
        by_feature.update(name for _, name in alarms)
    return streams * length, total, by_feature


def cost(model: Model, config: DetectorConfig, events: int, pool_seed: int) -> float:
    features, probabilities = model.stream(transactions(events, pool_seed))
    detector = DriftDetector(model.profile, config)
    batches = [(features.iloc[s:s + BATCH], probabilities[s:s + BATCH])
               for s in range(0, events, BATCH)]
    started = time.process_time()
    for batch, probs in batches:
        detector.update(batch, probs)
    return events / (time.process_time() - started)


def line(name: str, figure: str, target: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else "MET" if met else "NOT MET"
    print(f"{name:<44} {figure:>10}   {'target ' + target if target else '':<22} {verdict}")


def within(found: list[float], limit: int) -> float:
    return sum(delay <= limit for delay in found) / len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--arl-streams", type=int, default=40)
    parser.add_argument("--arl-length", type=int, default=50_000)
    parser.add_argument("--arl0", type=float, default=10_000.0)
    args = parser.parse_args()
    config = DetectorConfig(arl0=args.arl0)
    model = reference()
    detector = DriftDetector(model.profile, config)
    print(f"reference: {model.profile.rows} training rows; detector: "
          f"{len(detector.statistics)} one-sided statistics, ARL0 {config.arl0:,.0f} overall")

    large = delays(model, config, args.seeds, args.warmup, 400, "amount",
                   lambda f: shift_amount(f, 0.5), 101)
    line("0.5 sigma log(amount): P(detected <= 100)", f"{within(large, 100):.3f}", ">= 0.95",
         within(large, 100) >= 0.95)
    line("  median delay (events)", f"{statistics.median(large):.0f}")
    small = delays(model, config, args.seeds, args.warmup, 10_000, "amount",
                   lambda f: shift_amount(f, 0.1), 102)
    line("0.1 sigma log(amount): P(detected <= 5,000)", f"{within(small, 5_000):.3f}",
         ">= 0.95", within(small, 5_000) >= 0.95)
    line("  median delay (events)", f"{statistics.median(small):.0f}")
    category = delays(model, config, args.seeds, args.warmup, 2_000, "merchant_category",
                      lambda f: new_category(f, 0.05, 1), 103)
    line("new category at 5%: P(detected <= 500)", f"{within(category, 500):.3f}", ">= 0.95",
         within(category, 500) >= 0.95)
    line("  median delay (events)", f"{statistics.median(category):.0f}")
    events, alarms, by_feature = false_alarms(model, config, args.arl_streams,
                                              args.arl_length, 104)
    arl = events / alarms if alarms else float("inf")
    shown = f">{events:,}" if not alarms else f"{arl:,.0f}"
    line("no shift: events per false alarm", shown, ">= 10,000", arl >= 10_000)
    print(f"  {alarms} false alarms in {events:,} events: {dict(by_feature.most_common())}")
    rate = cost(model, config, 200_000, 105)
    print(f"cost: {rate:,.0f} events/s per core updating all {len(detector.statistics)} "
          f"statistics ({BATCH}-event batches, process CPU time)")


if __name__ == "__main__":
    main()
