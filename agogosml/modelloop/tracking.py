"""Where the loop keeps its runs and models, and the names it uses there."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agogosml.modelloop.errors import ModelLoopError

MODEL_ARTIFACT = "model"
PROFILE_ARTIFACT = "reference_profile.json"
MANIFEST_ARTIFACT = "model_loop.json"
HOLDOUT_ARTIFACT = "holdout/holdout.parquet"
GATE_REPORT_ARTIFACT = "gate/report.json"

# Tag keys: on runs, model versions and registered models alike.
TAG_PREFIX = "agogosml."
TRIGGER_TAG = "agogosml.trigger"
MODEL_URI_TAG = "agogosml.model_uri"
RUN_ID_TAG = "agogosml.run_id"
GATE_TAG = "agogosml.gate"

# What MLflow answers when a registered model or an alias does not exist.
ABSENT = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


@dataclass(frozen=True)
class Tracking:
    """An MLflow tracking + registry store and where new experiments keep artifacts; and
    the subject lineage index (agogosml.privacy.lineage) runs and versions are recorded in,
    if any: sqlite:///<path> or postgresql://… (see agogosml.modelloop.lineage)."""

    tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    artifacts_dir: Path = Path("var/mlflow/artifacts")
    experiment: str = "agogosml-model-loop"
    model_name: str = "demo"
    lineage_url: str | None = field(default=None, repr=False)  # it may hold a password


def connect(tracking: Tracking) -> None:
    """Point MLflow's (process-wide) client at the store and make the experiment current."""
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)
    ensure_experiment(tracking.experiment, tracking.tracking_uri, tracking.artifacts_dir)
    mlflow.set_experiment(tracking.experiment)


def ensure_experiment(name: str, tracking_uri: str, artifacts_dir: Path) -> None:
    """Create the experiment if missing. With a tracking server, the server stores the
    artifacts (where every pod can reach them); with a local store, `artifacts_dir` does."""
    if mlflow.get_experiment_by_name(name) is not None:
        return
    if tracking_uri.startswith(("http://", "https://")):
        mlflow.create_experiment(name)
        return
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    mlflow.create_experiment(name, artifact_location=artifacts_dir.resolve().as_uri())


def read_text_artifact(run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as directory:
        return download_artifact(run_id, path, Path(directory)).read_text()


def download_artifact(run_id: str, path: str, directory: Path) -> Path:
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                    dst_path=str(directory))
    except (MlflowException, OSError) as error:
        raise ModelLoopError(f"run {run_id} has no artifact {path}: "
                             f"{str(error).splitlines()[0][:300]}") from None
    return Path(local)


def alias_version(model_name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the model or the alias does not exist."""
    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException as error:
        if error.error_code in ABSENT:
            return None
        raise
