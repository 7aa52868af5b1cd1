"""Train the demo fraud model and register it in MLflow as `models:/demo@champion`.

It is the model loop's own recipe (agogosml.modelloop.training) on the demo data set, so
that later challengers are compared with a champion built the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from agogosml.demo.data import transactions
from agogosml.modelloop.registry import bootstrap_champion
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, train

log = logging.getLogger(__name__)

EXPERIMENT = "agogosml-demo"


@dataclass(frozen=True, slots=True)
class TrainedDemo:
    model_name: str
    version: str
    run_id: str
    roc_auc: float


def dataset_path(artifacts_dir: Path, rows: int = 20_000, seed: int = 7) -> Path:
    """Where the demo's training data is kept (what a retrain trains on again)."""
    return artifacts_dir / "datasets" / f"demo-transactions-{rows}-{seed}.csv"


Protect = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""What the input reader's privacy policy does to one record."""


def protected(frame: pd.DataFrame, protect: Protect) -> pd.DataFrame:
    """`frame` as the pipeline would have stored it: each row through the privacy policy."""
    return pd.DataFrame.from_records([
        protect({str(name): value for name, value in row.items()})
        for row in frame.to_dict("records")])


def train_and_register(tracking_uri: str, artifacts_dir: Path, model_name: str = "demo",
                       rows: int = 20_000, seed: int = 7,
                       protect: Protect | None = None, lineage_url: str | None = None,
                       shards: int = 0) -> TrainedDemo:
    """The data set is kept next to the artifacts (`datasets/`), where the run's manifest
    says it came from. With `protect`, it is kept as the privacy policy leaves it: the
    training data then holds pseudonyms, as data collected from the pipeline would. With
    `lineage_url`, the run's subjects and the registered version are recorded there; with
    `shards`, the model is an ensemble of that many subject-hashed shards (SISA)."""
    dataset = dataset_path(artifacts_dir, rows, seed)
    dataset.parent.mkdir(parents=True, exist_ok=True)
    frame = transactions(rows, seed)
    (frame if protect is None else protected(frame, protect)).to_csv(dataset, index=False)
    tracking = Tracking(tracking_uri, artifacts_dir, EXPERIMENT, model_name, lineage_url)
    result = train(tracking, TrainConfig(dataset, seed=seed, shards=shards), trigger="demo")
    version = bootstrap_champion(tracking, result.run_id, trigger="demo")
    roc_auc = result.metrics["roc_auc"]
    log.info("demo model registered", extra={"model": model_name, "version": version,
                                             "roc_auc": round(roc_auc, 4)})
    return TrainedDemo(model_name, version, result.run_id, roc_auc)


def has_alias(tracking_uri: str, model_name: str = "demo", alias: str = "champion") -> bool:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        MlflowClient().get_model_version_by_alias(model_name, alias)
    except mlflow.exceptions.MlflowException:
        return False
    return True
