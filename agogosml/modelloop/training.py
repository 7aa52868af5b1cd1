"""Train a candidate: fit a pipeline on a dataset file and record everything the gate,
the registry and drift detection need in one MLflow run.

The run holds: params, holdout metrics, the dataset as an input (source = the file,
digest = sha256 of its bytes — MLflow's own digest reads only the first 10,000 rows),
the model (pyfunc answers predict_proba; signature and input example), the reference
profile, the holdout rows (features and label only, never personal fields) and a
manifest that says how it all was made.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature

from agogosml.modelloop.dataset import (
    DatasetSpec,
    FeatureSchema,
    file_digest,
    load_dataset,
    resolve_schema,
    split_holdout,
)
from agogosml.modelloop.estimators import SKOPS_TRUSTED_TYPES, build_pipeline, estimator_params
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.modelloop.scores import holdout_metrics
from agogosml.modelloop.tracking import (
    HOLDOUT_ARTIFACT,
    MANIFEST_ARTIFACT,
    MODEL_ARTIFACT,
    MODEL_URI_TAG,
    PROFILE_ARTIFACT,
    TRIGGER_TAG,
    Tracking,
    connect,
    download_artifact,
    read_text_artifact,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    dataset: Path
    spec: DatasetSpec = field(default_factory=DatasetSpec)
    estimator: str = "logistic_regression"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 7
    holdout_fraction: float = 0.25


@dataclass(frozen=True)
class Manifest:
    """How a run was made; stored as `model_loop.json` next to the model."""

    schema: FeatureSchema
    personal_fields: tuple[str, ...]
    estimator: str
    seed: int
    holdout_fraction: float
    dataset_source: str
    dataset_digest: str
    dataset_rows: int
    holdout_rows: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(**{**data, "schema": FeatureSchema.from_dict(data["schema"]),
                      "personal_fields": tuple(data["personal_fields"])})


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    dataset_digest: str


def train(tracking: Tracking, config: TrainConfig, trigger: str = "manual") -> TrainResult:
    frame = load_dataset(config.dataset)
    digest = file_digest(config.dataset)
    schema = resolve_schema(frame, config.spec)
    split = split_holdout(frame, schema, config.holdout_fraction, config.seed)
    pipeline = build_pipeline(schema, config.estimator, config.params, config.seed)
    pipeline.fit(split.train_x, split.train_y)
    metrics = holdout_metrics(split.holdout_y, pipeline.predict_proba(split.holdout_x))
    profile = ReferenceProfile.build(split.train_x, split.train_y, schema,
                                     pipeline.predict_proba(split.train_x))
    source = str(config.dataset.resolve())
    manifest = Manifest(schema, config.spec.personal_fields, config.estimator, config.seed,
                        config.holdout_fraction, source, digest, len(frame), len(split.holdout_x))
    connect(tracking)
    with mlflow.start_run(run_name=f"train-{trigger}", tags={TRIGGER_TAG: trigger}) as run:
        mlflow.log_params({"estimator": config.estimator, "seed": config.seed,
                           "holdout_fraction": config.holdout_fraction, "label": schema.label,
                           "features": ",".join(schema.features), "dataset_rows": len(frame)})
        mlflow.log_params({f"classifier.{key}": value
                           for key, value in estimator_params(pipeline).items()})
        mlflow.log_metrics(metrics)
        _log_dataset(frame, source, schema.label, digest)
        mlflow.log_text(profile.to_json(), PROFILE_ARTIFACT)
        mlflow.log_text(manifest.to_json(), MANIFEST_ARTIFACT)
        _log_holdout(split.holdout_frame(schema.label))
        model_uri = _log_model(pipeline, split.train_x, SKOPS_TRUSTED_TYPES[config.estimator])
        mlflow.set_tag(MODEL_URI_TAG, model_uri)
    log.info("candidate trained", extra={
        "run_id": run.info.run_id, "trigger": trigger, "estimator": config.estimator,
        "dataset_digest": digest, "rows": len(frame),
        **{name: round(value, 4) for name, value in metrics.items()}})
    return TrainResult(run.info.run_id, model_uri, metrics, digest)


@contextlib.contextmanager
def _without_mlflow_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # Schema inference hints that integer columns cannot hold missing values (ours
        # never do), and MLflow registers its local-file source twice and says so.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways",
                                category=UserWarning)
        yield


def _log_dataset(frame: pd.DataFrame, source: str, label: str, digest: str) -> None:
    with _without_mlflow_hints():
        dataset = from_pandas(frame, source=source, targets=label, name=Path(source).name,
                              digest=digest)
        mlflow.log_input(dataset, context="training")  # infers the schema only now


def _log_holdout(holdout: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / Path(HOLDOUT_ARTIFACT).name
        holdout.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(HOLDOUT_ARTIFACT).parent))


def _log_model(pipeline: Any, train_x: pd.DataFrame, trusted_types: tuple[str, ...]) -> str:
    with _without_mlflow_hints():
        signature = infer_signature(train_x, pipeline.predict_proba(train_x.head(50)))
        info = mlflow.sklearn.log_model(
            pipeline, name=MODEL_ARTIFACT, signature=signature, input_example=train_x.head(3),
            pyfunc_predict_fn="predict_proba", skops_trusted_types=list(trusted_types),
            # Stating the requirements spares MLflow a subprocess that infers them.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True))
    return str(info.model_uri)


def load_manifest(run_id: str) -> Manifest:
    return Manifest.from_json(read_text_artifact(run_id, MANIFEST_ARTIFACT))


def load_reference_profile(run_id: str) -> ReferenceProfile:
    return ReferenceProfile.from_json(read_text_artifact(run_id, PROFILE_ARTIFACT))


def load_holdout(run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as directory:
        return pd.read_parquet(download_artifact(run_id, HOLDOUT_ARTIFACT, Path(directory)))
