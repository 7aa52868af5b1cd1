"""A sharded model: one pipeline per shard (see agogosml.modelloop.shards), fitted or
reused from an earlier run, logged as ONE MLflow python_function model that averages the
shards' predict_proba (agogosml/modelloop/shard_average.py).

The run keeps every shard as an artifact, `shards/shard-NNN` (an MLflow sklearn model
directory, saved with skops), and `shards/shards.json`: per shard its rows, subjects,
subject digest, row digest, whether this run fitted it and the run that did. A later run
with the same recipe reuses a shard whose two digests are unchanged: it copies the saved
directory as it is and loads it for scoring, instead of fitting again.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.pipeline import Pipeline

from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.estimators import build_pipeline
from agogosml.modelloop.shards import ShardRows
from agogosml.modelloop.tracking import download_artifact, read_text_artifact

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"
SHARDS_SUMMARY_ARTIFACT = f"{SHARDS_DIR}/shards.json"
SHARD_AVERAGE_CODE = Path(__file__).with_name("shard_average.py")


def shard_name(index: int) -> str:
    return f"shard-{index:03d}"


@dataclass(frozen=True)
class ShardRecord:
    """What `shards/shards.json` says about one shard."""

    index: int
    rows: int
    subjects: int
    subject_digest: str
    row_digest: str
    fitted: bool
    """True: this run fitted it; False: it was reused from `fitted_by_run`."""
    fitted_by_run: str | None
    """The run that fitted it; None while this run's id is not known yet."""

    def unchanged(self, rows: ShardRows) -> bool:
        return (self.subject_digest, self.row_digest) == (rows.subject_digest,
                                                          rows.row_digest)


@dataclass(frozen=True)
class ReusableShards:
    """An earlier sharded run whose shards may be reused: its records and its run id."""

    run_id: str
    records: dict[int, ShardRecord]


@dataclass
class ShardedModel:
    """The shards' pipelines in shard order, with their records; reused shards' saved
    directories are kept to be logged again byte for byte."""

    pipelines: list[Pipeline]
    records: list[ShardRecord]
    reused_directories: dict[int, Path]
    reused_from: str | None

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray[Any, Any]:
        """What the logged model's predict answers (shard_average.ShardAverage)."""
        strings = {name: object for name, dtype in features.dtypes.items()
                   if isinstance(dtype, pd.StringDtype)}
        frame = features.astype(strings) if strings else features
        mean: np.ndarray[Any, Any] = np.mean(
            [pipeline.predict_proba(frame) for pipeline in self.pipelines], axis=0)
        return mean

    @property
    def fitted_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.records if record.fitted)

    @property
    def reused_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.records if not record.fitted)


def load_shard_records(run_id: str) -> list[ShardRecord]:
    data = json.loads(read_text_artifact(run_id, SHARDS_SUMMARY_ARTIFACT))
    return [ShardRecord(**item) for item in data["shards"]]


def fit_shards(rows: list[ShardRows], schema: FeatureSchema, estimator: str,
               params: Mapping[str, Any], seed: int, reusable: ReusableShards | None,
               workdir: Path) -> ShardedModel:
    """Fits every shard, except those `reusable` holds with unchanged digests: those are
    downloaded into `workdir` and loaded."""
    pipelines: list[Pipeline] = []
    records: list[ShardRecord] = []
    reused: dict[int, Path] = {}
    for shard in rows:
        kept = _reuse(reusable, shard, workdir) if reusable is not None else None
        if kept is None:
            pipeline = build_pipeline(schema, estimator, params, seed)
            pipelines.append(pipeline.fit(shard.features, shard.labels))
            records.append(_record(shard, fitted=True, fitted_by=None))
        else:
            pipeline, directory, fitted_by = kept
            pipelines.append(pipeline)
            reused[shard.index] = directory
            records.append(_record(shard, fitted=False, fitted_by=fitted_by))
    return ShardedModel(pipelines, records, reused, reusable.run_id if reusable else None)


def _reuse(reusable: ReusableShards, shard: ShardRows,
           workdir: Path) -> tuple[Pipeline, Path, str] | None:
    """The earlier run's shard, its directory and the run that fitted it, when its rows are
    unchanged and it can still be had (a retired run's artifacts may have been deleted:
    then the shard is fitted again)."""
    previous = reusable.records.get(shard.index)
    if previous is None or not previous.unchanged(shard):
        return None
    try:
        directory = download_artifact(reusable.run_id, f"{SHARDS_DIR}/{shard_name(shard.index)}",
                                      workdir / "reused")
        pipeline = _load_shard(directory, reusable.run_id, shard.index)
    except ModelLoopError as error:
        log.warning("shard not reusable: fitted instead", extra={
            "reuse_from": reusable.run_id, "shard": shard.index, "reason": str(error)[:300]})
        return None
    return pipeline, directory, previous.fitted_by_run or reusable.run_id


def _record(shard: ShardRows, *, fitted: bool, fitted_by: str | None) -> ShardRecord:
    return ShardRecord(shard.index, len(shard.labels), shard.subjects, shard.subject_digest,
                       shard.row_digest, fitted, fitted_by)


def _load_shard(directory: Path, run_id: str, index: int) -> Pipeline:
    try:
        pipeline: Pipeline = mlflow.sklearn.load_model(str(directory))
    except (MlflowException, OSError, ValueError) as error:
        raise ModelLoopError(f"shard {index} of run {run_id} cannot be loaded: "
                             f"{str(error).splitlines()[0][:300]}") from None
    return pipeline


def save_shards(model: ShardedModel, run_id: str, trusted_types: tuple[str, ...],
                directory: Path) -> dict[str, str]:
    """Every shard's MLflow sklearn directory and shards.json under `directory`; returns
    the shard directories by artifact name, for the python_function model."""
    directory.mkdir(parents=True)
    artifacts = {}
    for record, pipeline in zip(model.records, model.pipelines, strict=True):
        target = directory / shard_name(record.index)
        if record.fitted:
            mlflow.sklearn.save_model(
                pipeline, str(target),
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                skops_trusted_types=list(trusted_types), pyfunc_predict_fn="predict_proba",
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True))
        else:
            shutil.copytree(model.reused_directories[record.index], target)
        artifacts[shard_name(record.index)] = str(target)
    summary = [asdict(record) | {"fitted_by_run": record.fitted_by_run or run_id}
               for record in model.records]
    (directory / Path(SHARDS_SUMMARY_ARTIFACT).name).write_text(json.dumps(
        {"reused_from": model.reused_from, "shards": summary}, indent=1))
    return artifacts
