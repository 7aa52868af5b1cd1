"""Train a candidate: fit a pipeline (or one per shard) on a dataset file and record
everything the gate, the registry, drift detection and subject lineage need in one MLflow
run.

The run holds: params, holdout metrics, the dataset as an input (source = the file,
digest = sha256 of its bytes — MLflow's own digest reads only the first 10,000 rows),
the model (pyfunc answers predict_proba; signature and input example), the reference
profile, the holdout rows (features and label only, never personal fields) and a
manifest that says how it all was made.

With `TrainConfig.shards` N ≥ 1 the model is SISA-style: the training rows are split into
N shards by subject (agogosml.modelloop.shards), one pipeline is fitted per shard and the
logged model averages them (agogosml.modelloop.ensemble); the holdout is chosen by subject
too. `reuse_from` names an earlier sharded run: a shard whose rows did not change is taken
from it instead of fitted again, which is how forgetting a subject refits only its shard.
The run's tags say which shards were fitted (`agogosml.shards_fitted`) and which reused
(`agogosml.shards_reused`, from `agogosml.reuse`).

With a lineage index (`Tracking.lineage_url`, or one passed in) the run records its
dataset digest and every subject of the dataset first thing; if that fails, the run fails
(agogosml.modelloop.lineage). Subjects are recorded as the dataset holds them: the input
reader has pseudonymized them already.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
import sklearn

from agogosml.modelloop.dataset import (
    DatasetSpec,
    FeatureSchema,
    Split,
    file_digest,
    load_dataset,
    resolve_schema,
    split_holdout,
)
from agogosml.modelloop.ensemble import (
    ReusableShards,
    ShardedModel,
    ShardRecord,
    cached_holdout_probas,
    fit_shards,
    load_shard_records,
)
from agogosml.modelloop.errors import DatasetError, ModelLoopError
from agogosml.modelloop.estimators import SKOPS_TRUSTED_TYPES, build_pipeline, estimator_params
from agogosml.modelloop.lineage import (
    LINEAGE_TAG,
    NOT_RECORDED,
    RECORDED,
    lineage_index,
    record_training,
    training_subjects,
)
from agogosml.modelloop.onnx_export import log_onnx, record_not_converted
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.modelloop.runlog import log_dataset, log_holdout, log_pipeline, log_sharded_model
from agogosml.modelloop.scores import holdout_metrics
from agogosml.modelloop.shards import shard_rows, subject_split
from agogosml.modelloop.tracking import (
    HOLDOUT_ARTIFACT,
    MANIFEST_ARTIFACT,
    MODEL_URI_TAG,
    PROFILE_ARTIFACT,
    TAG_PREFIX,
    TRIGGER_TAG,
    Tracking,
    connect,
    download_artifact,
    read_text_artifact,
)

if TYPE_CHECKING:
    from agogosml.privacy.lineage import LineageIndex

log = logging.getLogger(__name__)

PROFILE_PREDICTION_ROWS = 20_000
"""The reference profile's prediction histogram is taken on at most this many training
rows (a seeded sample): ten bins need no more, and a sharded model scores every row once
per shard."""
SUBJECT_SPLIT = "subject-sha256-v1"
"""How sharded training splits and shards (agogosml.modelloop.shards); part of the recipe a
reused shard must share."""

SHARDS_FITTED_TAG = f"{TAG_PREFIX}shards_fitted"
SHARDS_REUSED_TAG = f"{TAG_PREFIX}shards_reused"
REUSE_TAG = f"{TAG_PREFIX}reuse"
"""Where reused shards came from, or why none were reused."""


@dataclass(frozen=True)
class TrainConfig:
    """`shards` 0: one model on every training row, holdout stratified by label, as
    always; N ≥ 1: N shard models by `spec.subject`, averaged, holdout chosen by subject."""

    dataset: Path
    spec: DatasetSpec = field(default_factory=DatasetSpec)
    estimator: str = "logistic_regression"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 7
    holdout_fraction: float = 0.25
    shards: int = 0


@dataclass(frozen=True)
class Manifest:
    """How a run was made; stored as `model_loop.json` next to the model. `shard_recipe`
    digests everything a reused shard must share with the run reusing it."""

    schema: FeatureSchema
    personal_fields: tuple[str, ...]
    estimator: str
    seed: int
    holdout_fraction: float
    dataset_source: str
    dataset_digest: str
    dataset_rows: int
    holdout_rows: int
    subject: str | None = None
    shards: int = 0
    shard_recipe: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(**{**data, "schema": FeatureSchema.from_dict(data["schema"]),
                      "personal_fields": tuple(data["personal_fields"])})


@dataclass(frozen=True)
class TrainResult:
    """`shards` is empty for a single model. `lineage_subjects` is how many subjects the
    lineage index holds for the run, None when no index was configured."""

    run_id: str
    model_uri: str
    metrics: dict[str, float]
    dataset_digest: str
    shards: tuple[ShardRecord, ...] = ()
    reused_from: str | None = None
    lineage_subjects: int | None = None

    @property
    def fitted_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.shards if record.fitted)

    @property
    def reused_shards(self) -> tuple[int, ...]:
        return tuple(record.index for record in self.shards if not record.fitted)


@dataclass(frozen=True)
class _Fitted:
    """What was fitted, on which split: a pipeline or a sharded model."""

    split: Split
    model: Any
    sharded: ShardedModel | None
    shard_recipe: str
    reuse_note: str


def train(tracking: Tracking, config: TrainConfig, trigger: str = "manual", *,
          reuse_from: str | None = None, lineage: LineageIndex | None = None) -> TrainResult:
    """`reuse_from`: an earlier sharded run (say the champion's) whose unchanged shards
    are reused; ignored, with the reason in the run's `agogosml.reuse` tag, when that run
    was made with another recipe, and ignored when this training is not sharded (a single
    model has nothing to reuse). `lineage`: an open LineageIndex, else the one at
    `tracking.lineage_url`, if any."""
    if config.shards < 0:
        raise ModelLoopError(f"shards {config.shards}: use 0 (one model) or a positive count")
    frame = load_dataset(config.dataset)
    digest = file_digest(config.dataset)
    schema = resolve_schema(frame, config.spec)
    connect(tracking)
    with lineage_index(tracking, lineage) as index:
        subjects = training_subjects(frame, config.spec.subject) if index is not None \
            else None
        with tempfile.TemporaryDirectory() as workdir:
            fitted = _fit(frame, schema, config, reuse_from, Path(workdir))
            holdout_x = fitted.split.holdout_x
            metrics = holdout_metrics(fitted.split.holdout_y, fitted.sharded.holdout_proba(
                holdout_x, cached_holdout_probas(fitted.sharded, holdout_x, Path(workdir)))
                if fitted.sharded else fitted.model.predict_proba(holdout_x))
            profile = ReferenceProfile.build(
                fitted.split.train_x, fitted.split.train_y, schema,
                fitted.model.predict_proba(_prediction_sample(fitted.split.train_x,
                                                              config.seed)))
            source = str(config.dataset.resolve())
            manifest = Manifest(schema, _personal_fields(config.spec), config.estimator,
                                config.seed, config.holdout_fraction, source, digest,
                                len(frame), len(fitted.split.holdout_x), config.spec.subject,
                                config.shards, fitted.shard_recipe)
            with mlflow.start_run(run_name=f"train-{trigger}",
                                  tags={TRIGGER_TAG: trigger}) as run:
                run_id = run.info.run_id
                if index is not None and subjects is not None:
                    record_training(index, run_id, tracking.model_name, digest, subjects)
                mlflow.set_tag(LINEAGE_TAG, NOT_RECORDED if subjects is None
                               else f"{RECORDED}: {len(subjects)} subjects")
                model_uri = _log_run(run_id, frame, source, digest, config, fitted, metrics,
                                     profile, manifest)
    log.info("candidate trained", extra={
        "run_id": run_id, "trigger": trigger, "estimator": config.estimator,
        "dataset_digest": digest, "rows": len(frame), "shards": config.shards,
        "shards_fitted": len(fitted.sharded.fitted_shards) if fitted.sharded else None,
        **{name: round(value, 4) for name, value in metrics.items()}})
    sharded = fitted.sharded
    records = tuple(replace(record, fitted_by_run=record.fitted_by_run or run_id)
                    for record in sharded.records) if sharded else ()
    return TrainResult(run_id, model_uri, metrics, digest, records,
                       sharded.reused_from if sharded else None,
                       None if subjects is None else len(subjects))


def _personal_fields(spec: DatasetSpec) -> tuple[str, ...]:
    """The spec's personal fields and its subject column, which is personal too."""
    subject = (spec.subject,) if spec.subject else ()
    return tuple(dict.fromkeys((*spec.personal_fields, *subject)))


def _prediction_sample(train_x: pd.DataFrame, seed: int) -> pd.DataFrame:
    if len(train_x) <= PROFILE_PREDICTION_ROWS:
        return train_x
    return train_x.sample(n=PROFILE_PREDICTION_ROWS, random_state=seed)


def _fit(frame: pd.DataFrame, schema: FeatureSchema, config: TrainConfig,
         reuse_from: str | None, workdir: Path) -> _Fitted:
    if not config.shards:
        split = split_holdout(frame, schema, config.holdout_fraction, config.seed)
        pipeline = build_pipeline(schema, config.estimator, config.params, config.seed)
        return _Fitted(split, pipeline.fit(split.train_x, split.train_y), None, "", "")
    if config.spec.subject is None:
        raise DatasetError("sharded training needs a subject column (DatasetSpec.subject)")
    recipe = shard_recipe(config, schema)
    reusable, note = _reusable(reuse_from, config.shards, recipe)
    sharded = subject_split(frame, schema, config.spec.subject, config.holdout_fraction,
                            config.seed, config.shards)
    model = fit_shards(shard_rows(sharded), schema, config.estimator, config.params,
                       config.seed, reusable, workdir)
    return _Fitted(sharded.split, model, model, recipe, note)


def shard_recipe(config: TrainConfig, schema: FeatureSchema) -> str:
    """A digest of what makes two runs' shards interchangeable: features, subject, estimator
    and its parameters, seed, holdout, shard count, split method, scikit-learn version."""
    recipe = {"schema": schema.to_dict(), "subject": config.spec.subject,
              "estimator": config.estimator, "params": dict(config.params),
              "seed": config.seed, "holdout_fraction": config.holdout_fraction,
              "shards": config.shards, "split": SUBJECT_SPLIT,
              "scikit_learn": sklearn.__version__}
    text = json.dumps(recipe, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _reusable(run_id: str | None, shards: int,
              recipe: str) -> tuple[ReusableShards | None, str]:
    """The earlier run's shards if they may be reused, and a note on what was decided."""
    if run_id is None:
        return None, "none asked: every shard fitted"
    try:
        previous = load_manifest(run_id)
    except ModelLoopError:
        return _not_reusable(run_id, "it is not a run of the model loop")
    if previous.shards != shards:
        return _not_reusable(run_id, f"it has {previous.shards} shards, not {shards}")
    if previous.shard_recipe != recipe:
        return _not_reusable(run_id, "it was trained with another recipe (features, subject, "
                                     "estimator, parameters, seed, holdout or scikit-learn)")
    try:
        records = load_shard_records(run_id)
    except ModelLoopError:
        return _not_reusable(run_id, "its shards are gone")
    return ReusableShards(run_id, {record.index: record for record in records}), \
        f"unchanged shards reused from run {run_id}"


def _not_reusable(run_id: str, reason: str) -> tuple[None, str]:
    log.warning("shards not reused: every shard is fitted",
                extra={"reuse_from": run_id, "reason": reason})
    return None, f"none from run {run_id}: {reason}; every shard fitted"


def _log_run(run_id: str, frame: pd.DataFrame, source: str, digest: str,
             config: TrainConfig, fitted: _Fitted, metrics: dict[str, float],
             profile: ReferenceProfile, manifest: Manifest) -> str:
    schema, split, sharded = manifest.schema, fitted.split, fitted.sharded
    mlflow.log_params({"estimator": config.estimator, "seed": config.seed,
                       "holdout_fraction": config.holdout_fraction, "label": schema.label,
                       "features": ",".join(schema.features), "dataset_rows": len(frame),
                       "shards": config.shards})
    first = sharded.pipelines[0] if sharded else fitted.model
    mlflow.log_params({f"classifier.{key}": value
                       for key, value in estimator_params(first).items()})
    mlflow.log_metrics(metrics)
    log_dataset(run_id, frame, source, schema.label, digest)
    mlflow.log_text(profile.to_json(), PROFILE_ARTIFACT)
    mlflow.log_text(manifest.to_json(), MANIFEST_ARTIFACT)
    log_holdout(split.holdout_frame(schema.label))
    trusted = SKOPS_TRUSTED_TYPES[config.estimator]
    if sharded is None:
        model_uri = log_pipeline(fitted.model, split.train_x, trusted)
        log_onnx(fitted.model, model_uri)
    else:
        mlflow.set_tags({
            SHARDS_FITTED_TAG: ",".join(map(str, sharded.fitted_shards)) or "none",
            SHARDS_REUSED_TAG: ",".join(map(str, sharded.reused_shards)) or "none",
            REUSE_TAG: fitted.reuse_note})
        model_uri = log_sharded_model(sharded, run_id, split.train_x, trusted)
        record_not_converted("no ONNX graph for a sharded model (an average of pipelines)")
    mlflow.set_tag(MODEL_URI_TAG, model_uri)
    return model_uri


def load_manifest(run_id: str) -> Manifest:
    return Manifest.from_json(read_text_artifact(run_id, MANIFEST_ARTIFACT))


def load_reference_profile(run_id: str) -> ReferenceProfile:
    return ReferenceProfile.from_json(read_text_artifact(run_id, PROFILE_ARTIFACT))


def load_holdout(run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as directory:
        return pd.read_parquet(download_artifact(run_id, HOLDOUT_ARTIFACT, Path(directory)))
