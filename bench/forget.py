"""Forgetting a subject with sharded (SISA) training: erasure-to-promoted against a full
retrain (issue 11's target: at most a quarter of it), and what sharding costs in holdout
ROC AUC (target: within one point of the single model).

Run with `python -m bench.forget [--rows R] [--shards N] [--estimator E] [--repeats K]`.
The demo's transactions (R rows, customer ids pseudonymized with HMAC-SHA256 as the input
reader does) are trained through the model loop into a real MLflow store (SQLite, temp dir)
with a SQLite lineage index:

- single: a full train (one model) + gate + register + promote, K times (after a first,
  untimed one that makes the champion);
- sharded full: the same with N shard models, K times;
- forget: remove one more training subject's rows from the dataset (untimed: the event
  store's part), then train reusing the champion's run, gate, register, promote: what
  `retrain("erasure")` and `promote` do, phase by phase; K times, and the lineage index
  must not tie the forgotten subject to the new version.

Medians are printed (total and per phase), then the ratios and each target's verdict. The
ROC AUCs are each champion's on its own gate holdout and both on the same fresh rows
(another seed of the demo data), which neither model has seen. Fitting and scoring run on
--threads threads (default 1) in every variant, so the figures do not depend on how busy
the machine's other cores are.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from agogosml.demo.data import FEATURES, LABEL, transactions
from agogosml.modelloop.dataset import DEMO_SUBJECT
from agogosml.modelloop.gate import GateLimits, evaluate
from agogosml.modelloop.registry import promote, register_challenger
from agogosml.modelloop.retrain import champion_run_id
from agogosml.modelloop.shards import held_out
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, train
from agogosml.privacy.lineage import open_lineage_index

RATIO_TARGET = 0.25
AUC_TARGET = 0.01
PSEUDONYM_KEY = b"bench-forget-pseudonym-key-0123456789"


def pseudonymize(values: pd.Series) -> pd.Series:
    """HMAC-SHA256 pseudonyms shaped like the input reader's (ps_ + base32 of 16 bytes)."""
    names = {value: "ps_" + base64.b32encode(
        hmac.new(PSEUDONYM_KEY, value.encode(), hashlib.sha256).digest()[:16])
        .decode("ascii").rstrip("=").lower() for value in values.unique()}
    return values.map(names)


def demo_rows(rows: int, seed: int) -> pd.DataFrame:
    frame = transactions(rows, seed)
    frame[DEMO_SUBJECT] = pseudonymize(frame[DEMO_SUBJECT])
    return frame


@dataclass
class Phases:
    """Seconds per phase of one cycle."""

    train: float = 0.0
    gate: float = 0.0
    register: float = 0.0

    @property
    def total(self) -> float:
        return self.train + self.gate + self.register


def cycle(tracking: Tracking, config: TrainConfig, limits: GateLimits, trigger: str,
          reuse_from: str | None = None) -> tuple[Phases, TrainResult, str]:
    """Train, gate, register and promote, timed by phase: what `retrain` then `promote` do
    (for an erasure, `retrain` passes the champion's run as `reuse_from`)."""
    phases = Phases()
    started = time.perf_counter()
    trained = train(tracking, config, trigger, reuse_from=reuse_from)
    phases.train = time.perf_counter() - started
    started = time.perf_counter()
    report = evaluate(tracking, trained.run_id, limits)
    phases.gate = time.perf_counter() - started
    if not report.passed:
        raise SystemExit(f"the gate rejected the {trigger} retrain: {report.summary()}")
    started = time.perf_counter()
    version = register_challenger(tracking, report, trigger)
    promote(tracking)
    phases.register = time.perf_counter() - started
    return phases, trained, version


def training_subjects(frame: pd.DataFrame, config: TrainConfig, count: int) -> list[str]:
    """Subjects whose rows are trained on (not held out), to forget one by one."""
    candidates = sorted(subject for subject in frame[DEMO_SUBJECT].unique()
                        if not held_out(subject, config.holdout_fraction, config.seed))
    return [str(subject) for subject in
            np.random.default_rng(config.seed).choice(candidates, count, replace=False)]


def fresh_auc(model_uri: str, fresh: pd.DataFrame) -> float:
    model = mlflow.pyfunc.load_model(model_uri)
    return float(roc_auc_score(fresh[LABEL], np.asarray(model.predict(fresh[list(FEATURES)]))
                               [:, 1]))


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def median_phases(runs: list[Phases]) -> Phases:
    return Phases(statistics.median(run.train for run in runs),
                  statistics.median(run.gate for run in runs),
                  statistics.median(run.register for run in runs))


def report(name: str, runs: list[Phases], note: str = "") -> float:
    """Prints the median total and phases; returns the median total."""
    phases = median_phases(runs)
    total = statistics.median(run.total for run in runs)
    print(f"{name:<32} {total:6.1f} s  (train {phases.train:.1f} + gate {phases.gate:.1f} + "
          f"register and promote {phases.register:.1f}){note}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--estimator", default="hist_gradient_boosting")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fresh-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for fitting and scoring, the same for every "
                             "variant (0: the libraries' default)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.threads:
        threadpool_limits(args.threads)
    frame = demo_rows(args.rows, args.seed)
    fresh = demo_rows(args.fresh_rows, args.seed + 1_000)
    limits = GateLimits()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset, shrinking = root / "transactions.csv", root / "after-forget.csv"
        frame.to_csv(dataset, index=False)
        single = Tracking(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", "bench-forget",
                          "single", f"sqlite:///{root / 'lineage.db'}")
        sharded = replace(single, model_name="sharded")
        single_config = TrainConfig(dataset, estimator=args.estimator, seed=args.seed)
        sharded_config = replace(single_config, shards=args.shards)
        print(f"{args.rows:,} rows, {frame[DEMO_SUBJECT].nunique():,} subjects; "
              f"{args.estimator}; {args.shards} shards; medians of {args.repeats} "
              "(after one untimed cycle that makes the champion)")

        _, single_run, _ = cycle(single, single_config, limits, "manual")
        single_s = [cycle(single, single_config, limits, "schedule")[0]
                    for _ in range(args.repeats)]
        sharded_s = [cycle(sharded, sharded_config, limits, "schedule")[0]
                     for _ in range(args.repeats + 1)][1:]

        forget_s, refitted, remaining = [], [], frame
        champion = champion_run_id(sharded)
        with open_lineage_index(str(single.lineage_url)) as index:
            for subject in training_subjects(frame, sharded_config, args.repeats):
                remaining = remaining[remaining[DEMO_SUBJECT] != subject]
                remaining.to_csv(shrinking, index=False)
                phases, trained, version = cycle(
                    sharded, replace(sharded_config, dataset=shrinking), limits, "erasure",
                    reuse_from=champion)
                champion = trained.run_id
                forget_s.append(phases)
                refitted.append(len(trained.fitted_shards))
                used = {use.model_version for use in index.versions_for(subject)
                        if use.model_name == "sharded"}
                assert version not in used, "the forgotten subject is in the new lineage"
        sharded_run = trained

        single_auc = fresh_auc("models:/single@champion", fresh)
        sharded_auc = fresh_auc("models:/sharded@champion", fresh)

    full_single = report("full retrain, single model", single_s)
    full_sharded = report(f"full retrain, {args.shards} shards", sharded_s)
    forget = report(f"forget a subject, {args.shards} shards", forget_s,
                    f"; {statistics.median(refitted):.0f} shard refitted")
    for name, full in (("single model's", full_single), ("sharded model's", full_sharded)):
        ratio = forget / full
        print(f"forget / the {name} full retrain: {ratio:.2f} (target <= {RATIO_TARGET:.2f}): "
              f"{verdict(ratio <= RATIO_TARGET)}")
    gap = single_auc - sharded_auc
    print(f"holdout ROC AUC (each on its own gate holdout): single "
          f"{single_run.metrics['roc_auc']:.4f}, sharded {sharded_run.metrics['roc_auc']:.4f}")
    print(f"ROC AUC on {args.fresh_rows:,} fresh rows: single {single_auc:.4f}, sharded "
          f"{sharded_auc:.4f}: {gap * 100:+.2f} points (target: at most "
          f"{AUC_TARGET * 100:.0f} lower): {verdict(gap <= AUC_TARGET)}")


if __name__ == "__main__":
    main()
