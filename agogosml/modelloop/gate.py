"""The test gate: may a candidate run's model become the challenger?

The candidate is scored as the app would serve it (MLflow pyfunc: for a sharded model, the
whole ensemble) on the holdout stored with its run, and the current champion
(`models:/<name>@champion`, if any) on the very same rows. The champion may have been
trained on some of those rows when the data set changed since; that favours the champion,
so the gate errs on the side of keeping it.
One check, `onnx_parity`, is informational and always passes: whether the ONNX graph
logged with the run scores the holdout as the pyfunc does, so that the app may serve it
(agogosml.modelloop.onnx_export); its reason says which path will serve and why.
The report is logged with the candidate's run (`gate/report.json`, tag `agogosml.gate`).

With it goes `gate/holdout_scores.json`: the candidate's metrics, keyed by a digest of the
holdout rows, the model URI and the scikit-learn and MLflow versions that scored it. A later
gate whose champion is that run takes the champion's metrics from there when all of these
are the same (the holdout did not change, as when a training subject is forgotten): the
champion would score the very same rows with the very same model, so it is not loaded and
scored again. Any difference, or no such record (a bootstrapped champion), and it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn import __version__ as sklearn_version

from agogosml.modelloop import checks, onnx_export
from agogosml.modelloop.canned import CannedExample, default_examples
from agogosml.modelloop.checks import Check
from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.scores import holdout_metrics
from agogosml.modelloop.tracking import (
    GATE_REPORT_ARTIFACT,
    GATE_TAG,
    MODEL_URI_TAG,
    RUN_ID_TAG,
    Tracking,
    alias_version,
    connect,
    read_text_artifact,
)
from agogosml.modelloop.training import load_holdout, load_manifest

log = logging.getLogger(__name__)

# What a model that does not fit the rows raises from predict.
SCORING_ERRORS = (MlflowException, ValueError, TypeError, KeyError, IndexError)
HOLDOUT_SCORES_ARTIFACT = "gate/holdout_scores.json"


@dataclass(frozen=True)
class GateLimits:
    max_roc_auc_drop: float = 0.005
    max_average_precision_drop: float | None = None
    max_log_loss_increase: float | None = None
    min_roc_auc: float = 0.55
    latency_rows: int = 1_000
    max_latency_s: float = 1.0

    def max_drops(self) -> dict[str, float]:
        drops = {"roc_auc": self.max_roc_auc_drop,
                 "average_precision": self.max_average_precision_drop,
                 "log_loss": self.max_log_loss_increase}
        return {metric: drop for metric, drop in drops.items() if drop is not None}


@dataclass(frozen=True)
class GateReport:
    run_id: str
    model_name: str
    champion_version: str | None
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def summary(self) -> str:
        if self.passed:
            return f"passed {len(self.checks)}/{len(self.checks)} checks"
        return "failed: " + "; ".join(f"{c.name}: {c.reason}" for c in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "summary": self.summary()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> GateReport:
        data = json.loads(text)
        return cls(data["run_id"], data["model_name"], data["champion_version"],
                   data["candidate_metrics"], data["champion_metrics"],
                   tuple(Check(**check) for check in data["checks"]))


def evaluate(tracking: Tracking, run_id: str, limits: GateLimits | None = None,
             examples: tuple[CannedExample, ...] | None = None) -> GateReport:
    limits = limits or GateLimits()
    connect(tracking)
    manifest = load_manifest(run_id)
    schema = manifest.schema
    holdout = load_holdout(run_id)
    features, labels = holdout[list(schema.features)], holdout[schema.label]
    model_uri = MlflowClient().get_run(run_id).data.tags.get(MODEL_URI_TAG)
    if model_uri is None:
        raise ModelLoopError(f"run {run_id} has no model logged by the model loop")
    candidate = mlflow.pyfunc.load_model(model_uri)
    input_types = _input_types(candidate)
    fitted_names = _fitted_names(candidate, model_uri)
    output, valid = _score(candidate, features)
    report_checks = [
        checks.signature_matches(input_types, fitted_names, schema),
        checks.no_personal_features(input_types or {}, manifest.personal_fields),
        valid,
    ]
    metrics: dict[str, float] = {}
    champion_version = alias_version(tracking.model_name, "champion")
    champion_metrics = None
    # Without valid probabilities the remaining checks would measure nothing.
    if output is not None and valid.passed:
        metrics = holdout_metrics(labels, output)
        scores = HoldoutScores(holdout_digest(holdout), model_uri, _scoring_versions(),
                               metrics)
        _record_scores(run_id, scores)
        champion_metrics = _recorded_champion_metrics(tracking.model_name, champion_version,
                                                      scores.holdout)
        champion_problem = ""
        if champion_metrics is None:
            champion_metrics, champion_problem = _champion_metrics(
                tracking.model_name, champion_version, holdout, labels)
        report_checks += [
            checks.canned_examples_pass(
                candidate, default_examples(schema) if examples is None else examples,
                schema.features),
            checks.batch_latency_within(candidate, features, limits.latency_rows,
                                        limits.max_latency_s),
            checks.minimum_roc_auc(metrics, limits.min_roc_auc),
            # Informational: it never fails; it says whether the ONNX graph is served.
            onnx_export.check_parity(run_id, candidate, features, output),
            Check("versus_champion", False, champion_problem) if champion_problem
            else checks.not_worse_than_champion(metrics, champion_metrics, champion_version,
                                                limits.max_drops()),
        ]
    report = GateReport(run_id, tracking.model_name, champion_version, metrics,
                        champion_metrics, tuple(report_checks))
    _record(report)
    return report


@dataclass(frozen=True)
class HoldoutScores:
    """A gated model's metrics on a holdout, and what they depend on."""

    holdout: str
    model_uri: str
    versions: dict[str, str]
    metrics: dict[str, float]


def holdout_digest(holdout: pd.DataFrame) -> str:
    """sha256 of the holdout's column names, dtypes and every row's values, in order."""
    digest = hashlib.sha256(json.dumps(
        [[str(name), str(dtype)] for name, dtype in holdout.dtypes.items()]).encode())
    digest.update(np.asarray(pd.util.hash_pandas_object(holdout, index=False),
                             dtype=np.uint64).tobytes())
    return digest.hexdigest()


def _scoring_versions() -> dict[str, str]:
    return {"scikit_learn": sklearn_version, "mlflow": mlflow.__version__}


def _record_scores(run_id: str, scores: HoldoutScores) -> None:
    MlflowClient().log_text(run_id, json.dumps(asdict(scores), indent=1),
                            HOLDOUT_SCORES_ARTIFACT)


def _recorded_champion_metrics(model_name: str, version: str | None,
                               holdout: str) -> dict[str, float] | None:
    """The champion's metrics as its own gate recorded them, when that gate scored the same
    holdout rows with the champion's model and today's library versions; else None."""
    if version is None:
        return None
    try:
        client = MlflowClient()
        registered = client.get_model_version(model_name, version)
        run_id = registered.tags.get(RUN_ID_TAG) or registered.run_id
        if not run_id:
            return None
        model_uri = client.get_run(run_id).data.tags.get(MODEL_URI_TAG)
        data = json.loads(read_text_artifact(run_id, HOLDOUT_SCORES_ARTIFACT))
        recorded = HoldoutScores(**data)
    except (MlflowException, ModelLoopError, ValueError, TypeError):
        return None
    if (recorded.holdout, recorded.model_uri, recorded.versions) != (
            holdout, model_uri, _scoring_versions()) or registered.source != model_uri:
        return None
    return {name: float(value) for name, value in recorded.metrics.items()}


def _score(model: Any, features: pd.DataFrame) -> tuple[np.ndarray[Any, Any] | None, Check]:
    try:
        output = np.asarray(model.predict(features), dtype=float)
    except SCORING_ERRORS as error:
        return None, Check("probabilities", False,
                           f"the model cannot score its holdout: {_first_line(error)}")
    return output, checks.probabilities_valid(output, len(features))


def _fitted_names(model: Any, model_uri: str) -> list[str] | None:
    """The columns the pipeline was fitted on; for a sharded model, those of the first shard
    that differs from the first (so a mismatch is reported), else the first's."""
    if "sklearn" in model.metadata.flavors:
        names = getattr(mlflow.sklearn.load_model(model_uri), "feature_names_in_", None)
        return None if names is None else list(names)
    shards = getattr(model.unwrap_python_model(), "shards", None) or []
    fitted = [list(getattr(shard, "feature_names_in_", [])) for shard in shards]
    if not fitted:
        return None
    return next((names for names in fitted if names != fitted[0]), fitted[0])


def _input_types(model: Any) -> dict[str, str] | None:
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return {spec.name: getattr(spec.type, "name", str(spec.type)) for spec in schema.inputs}


def _champion_metrics(model_name: str, version: str | None, holdout: pd.DataFrame,
                      labels: pd.Series) -> tuple[dict[str, float] | None, str]:
    """The champion's metrics on the holdout, or why it could not be scored."""
    if version is None:
        return None, ""
    try:
        champion = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
        types = _input_types(champion)
        columns = list(types) if types else [c for c in holdout.columns if c != labels.name]
        missing = [column for column in columns if column not in holdout.columns]
        if missing:
            return None, (f"champion v{version} needs columns the holdout lacks: "
                          f"{', '.join(missing)}")
        output = np.asarray(champion.predict(holdout[columns]), dtype=float)
        return holdout_metrics(labels, output), ""
    except SCORING_ERRORS as error:
        return None, f"champion v{version} cannot score the holdout: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


def _record(report: GateReport) -> None:
    client = MlflowClient()
    client.log_text(report.run_id, report.to_json(), GATE_REPORT_ARTIFACT)
    client.set_tag(report.run_id, GATE_TAG, report.summary()[:5_000])
    log.info("gate evaluated", extra={
        "run_id": report.run_id, "model": report.model_name, "passed": report.passed,
        "champion_version": report.champion_version,
        "failed_checks": [check.name for check in report.failures]})
