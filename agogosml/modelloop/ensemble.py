"""A sharded model: one pipeline per shard (see agogosml.modelloop.shards), fitted or
reused from an earlier run, logged as ONE MLflow python_function model that averages the
shards' predict_proba (agogosml/modelloop/shard_average.py).

The run keeps every shard as an artifact, `shards/shard-NNN` (an MLflow sklearn model
directory, saved with skops), and `shards/shards.json`: per shard its rows, subjects,
subject digest, row digest, whether this run fitted it and the run that did. A later run
with the same recipe reuses a shard whose two digests are unchanged: it copies the saved
directory as it is and loads it for scoring, instead of fitting again.

`shards/holdout_proba.npz` keeps every shard's predict_proba on the run's holdout, keyed by
a digest of the holdout's features and the scikit-learn version (`holdout_key`) and by the
sha256 of each shard's saved model file. A later run that reuses a shard takes its holdout
predictions from there when the key and the shard's bytes are the same, instead of scoring
the holdout with it again; anything else (other rows, another library, other bytes) and the
shard is scored.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow.exceptions import MlflowException
from sklearn.pipeline import Pipeline

from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.estimators import build_pipeline
from agogosml.modelloop.shards import ShardRows, row_fingerprints
from agogosml.modelloop.tracking import download_artifact, read_text_artifact

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"
SHARDS_SUMMARY_ARTIFACT = f"{SHARDS_DIR}/shards.json"
HOLDOUT_PROBA_ARTIFACT = f"{SHARDS_DIR}/holdout_proba.npz"
SHARD_MODEL_FILE = "model.skops"
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
    holdout_key: str = ""
    holdout_probas: list[np.ndarray[Any, Any]] = field(default_factory=list)
    """Every shard's predict_proba on the holdout, once `holdout_proba` has run."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray[Any, Any]:
        """What the logged model's predict answers (shard_average.ShardAverage)."""
        frame = _plain_strings(features)
        mean: np.ndarray[Any, Any] = np.mean(
            [pipeline.predict_proba(frame) for pipeline in self.pipelines], axis=0)
        return mean

    def holdout_proba(self, holdout_x: pd.DataFrame,
                      cached: Mapping[int, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        """predict_proba on the holdout, taking a reused shard's predictions from `cached`
        (see `cached_holdout_probas`); kept for `save_shards`."""
        self.holdout_key = holdout_key(holdout_x)
        frame = _plain_strings(holdout_x)
        self.holdout_probas = [
            cached[record.index] if not record.fitted and record.index in cached
            else pipeline.predict_proba(frame)
            for record, pipeline in zip(self.records, self.pipelines, strict=True)]
        mean: np.ndarray[Any, Any] = np.mean(self.holdout_probas, axis=0)
        return mean

    @property
    def fitted_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.records if record.fitted)

    @property
    def reused_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.records if not record.fitted)


def _plain_strings(features: pd.DataFrame) -> pd.DataFrame:
    strings = {name: object for name, dtype in features.dtypes.items()
               if isinstance(dtype, pd.StringDtype)}
    return features.astype(strings) if strings else features


def holdout_key(holdout_x: pd.DataFrame) -> str:
    """sha256 of the holdout features' names, dtypes and row values, and scikit-learn's
    version: what a shard's holdout predictions depend on besides the shard itself."""
    digest = hashlib.sha256(json.dumps(
        [sklearn.__version__, [[str(name), str(dtype)]
                               for name, dtype in holdout_x.dtypes.items()]]).encode())
    digest.update(row_fingerprints(holdout_x).tobytes())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_holdout_probas(model: ShardedModel, holdout_x: pd.DataFrame,
                          workdir: Path) -> dict[int, np.ndarray[Any, Any]]:
    """The reused shards' holdout predictions recorded by the run they were reused from,
    for the shards whose saved model file and holdout key are the same; {} when there are
    none (or the record cannot be read)."""
    if model.reused_from is None or not model.reused_directories:
        return {}
    try:
        path = download_artifact(model.reused_from, HOLDOUT_PROBA_ARTIFACT,
                                 workdir / "holdout-proba")
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            if meta.get("holdout_key") != holdout_key(holdout_x):
                return {}
            result = {}
            for index, directory in model.reused_directories.items():
                name = shard_name(index)
                if meta["shards"].get(name) == _file_digest(directory / SHARD_MODEL_FILE):
                    proba = np.asarray(saved[name])
                    if proba.shape == (len(holdout_x), 2):
                        result[index] = proba
            return result
    except (ModelLoopError, OSError, ValueError, KeyError, TypeError) as error:
        log.warning("holdout predictions not reused: shards scored instead", extra={
            "reuse_from": model.reused_from, "reason": str(error)[:300]})
        return {}


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
    if model.holdout_probas:
        _save_holdout_probas(model, directory)
    summary = [asdict(record) | {"fitted_by_run": record.fitted_by_run or run_id}
               for record in model.records]
    (directory / Path(SHARDS_SUMMARY_ARTIFACT).name).write_text(json.dumps(
        {"reused_from": model.reused_from, "shards": summary}, indent=1))
    return artifacts


def _save_holdout_probas(model: ShardedModel, directory: Path) -> None:
    arrays = {shard_name(record.index): proba
              for record, proba in zip(model.records, model.holdout_probas, strict=True)}
    meta = {"holdout_key": model.holdout_key,
            "shards": {name: _file_digest(directory / name / SHARD_MODEL_FILE)
                       for name in arrays}}
    buffer = io.BytesIO()
    contents: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    np.savez(buffer, **contents)
    (directory / Path(HOLDOUT_PROBA_ARTIFACT).name).write_bytes(buffer.getvalue())
