"""Writing a training run's dataset input, holdout and model to the active MLflow run.

MLflow infers a schema value by value; on a dataset of hundreds of thousands of rows that
takes longer than fitting. Schemas (the dataset's and the model signature) are therefore
inferred from a sample: the first rows, plus, for every column with a missing value, the
first row where it is missing, so optional columns are still inferred as optional.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from agogosml.modelloop.ensemble import SHARD_AVERAGE_CODE, SHARDS_DIR, ShardedModel, save_shards
from agogosml.modelloop.tracking import HOLDOUT_ARTIFACT, MODEL_ARTIFACT

SCHEMA_SAMPLE_ROWS = 1_000


def schema_sample(frame: pd.DataFrame, rows: int = SCHEMA_SAMPLE_ROWS) -> pd.DataFrame:
    head = frame.head(rows)
    missing = frame.isna()
    extra = [missing[name].idxmax() for name in frame.columns
             if missing[name].any() and not missing[name].iloc[:rows].any()]
    return pd.concat([head, frame.loc[list(dict.fromkeys(extra))]]) if extra else head


@contextlib.contextmanager
def _without_mlflow_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # Schema inference hints that integer columns cannot hold missing values (ours
        # never do), and MLflow registers its local-file source twice and says so.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways",
                                category=UserWarning)
        yield


def log_dataset(run_id: str, frame: pd.DataFrame, source: str, label: str,
                digest: str) -> None:
    """The dataset as the run's training input: its source, digest and row count, and a
    schema inferred from a sample."""
    with _without_mlflow_hints():
        described = from_pandas(schema_sample(frame), source=source, targets=label,
                                name=Path(source).name, digest=digest).to_dict()
    dataset = Dataset(name=described["name"], digest=described["digest"],
                      source_type=described["source_type"], source=described["source"],
                      schema=described["schema"],
                      profile=json.dumps({"num_rows": len(frame),
                                          "num_elements": int(frame.size)}))
    MlflowClient().log_inputs(run_id, datasets=[DatasetInput(
        dataset, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")])])


def log_holdout(holdout: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / Path(HOLDOUT_ARTIFACT).name
        holdout.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(HOLDOUT_ARTIFACT).parent))


def _signature(model: Any, train_x: pd.DataFrame) -> Any:
    return infer_signature(schema_sample(train_x), model.predict_proba(train_x.head(50)))


def log_pipeline(pipeline: Any, train_x: pd.DataFrame, trusted_types: tuple[str, ...]) -> str:
    """One scikit-learn pipeline as the run's model; returns its URI."""
    with _without_mlflow_hints():
        info = mlflow.sklearn.log_model(
            pipeline, name=MODEL_ARTIFACT, signature=_signature(pipeline, train_x),
            input_example=train_x.head(3), pyfunc_predict_fn="predict_proba",
            skops_trusted_types=list(trusted_types),
            # Stating the requirements spares MLflow a subprocess that infers them.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True))
    return str(info.model_uri)


def log_sharded_model(model: ShardedModel, run_id: str, train_x: pd.DataFrame,
                      trusted_types: tuple[str, ...]) -> str:
    """The shards as run artifacts (`shards/`) and, with the same shards, the averaging
    python_function model as the run's model; returns its URI."""
    with tempfile.TemporaryDirectory() as directory:
        shards_dir = Path(directory) / SHARDS_DIR
        artifacts = save_shards(model, run_id, trusted_types, shards_dir)
        mlflow.log_artifacts(str(shards_dir), SHARDS_DIR)
        with _without_mlflow_hints():
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT, python_model=str(SHARD_AVERAGE_CODE), artifacts=artifacts,
                signature=_signature(model, train_x), input_example=train_x.head(3),
                pip_requirements=[f"mlflow=={mlflow.__version__}",
                                  *mlflow.sklearn.get_default_pip_requirements(
                                      include_skops=True)])
    return str(info.model_uri)
