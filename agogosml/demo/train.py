"""Train the demo fraud model and register it in MLflow as `models:/demo@champion`.

Minimal on purpose: the full train / gate / promote loop is its own piece of work.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from agogosml.demo.data import (
    BOOLEAN_FEATURES,
    CATEGORICAL_FEATURES,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    transactions,
)
from agogosml.modelloop.tracking import ensure_experiment

log = logging.getLogger(__name__)

EXPERIMENT = "agogosml-demo"


@dataclass(frozen=True, slots=True)
class TrainedDemo:
    model_name: str
    version: str
    run_id: str
    roc_auc: float


def build_pipeline(seed: int) -> Pipeline:
    columns = ColumnTransformer([
        ("numeric", StandardScaler(), list(NUMERIC_FEATURES + BOOLEAN_FEATURES)),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
    ])
    return Pipeline([("features", columns),
                     ("classifier", LogisticRegression(max_iter=500, random_state=seed))])


def train_and_register(tracking_uri: str, artifacts_dir: Path, model_name: str = "demo",
                       alias: str = "champion", rows: int = 20_000, seed: int = 7) -> TrainedDemo:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    ensure_experiment(EXPERIMENT, tracking_uri, artifacts_dir)
    mlflow.set_experiment(EXPERIMENT)

    data = transactions(rows, seed)
    features = data[list(FEATURES)]
    train_x, test_x, train_y, test_y = train_test_split(
        features, data[LABEL], test_size=0.25, random_state=seed, stratify=data[LABEL]
    )
    pipeline = build_pipeline(seed).fit(train_x, train_y)
    roc_auc = float(roc_auc_score(test_y, pipeline.predict_proba(test_x)[:, 1]))
    with mlflow.start_run(run_name="demo-train") as run:
        mlflow.log_params({"rows": rows, "seed": seed, "estimator": "LogisticRegression"})
        mlflow.log_metric("roc_auc", roc_auc)
        with warnings.catch_warnings():
            # MLflow hints that integer columns cannot hold missing values; ours never do.
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(train_x, pipeline.predict_proba(train_x.head(50)))
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=model_name, signature=signature,
            input_example=train_x.head(3), pyfunc_predict_fn="predict_proba",
        )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(model_name, alias, version)
    log.info("demo model registered", extra={"model": model_name, "version": version,
                                             "roc_auc": round(roc_auc, 4)})
    return TrainedDemo(model_name, version, run.info.run_id, roc_auc)


def has_alias(tracking_uri: str, model_name: str = "demo", alias: str = "champion") -> bool:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        MlflowClient().get_model_version_by_alias(model_name, alias)
    except mlflow.exceptions.MlflowException:
        return False
    return True
