"""The model registry with aliases only (no stages).

- `challenger`: the newest version that passed the gate, waiting to be shadowed and
  promoted. Only `register_challenger` sets it, and only for a passing gate report.
- `champion`: the version the app serves (`models:/<name>@champion`).
- `previous`: the champion before the last promotion; where `rollback` goes.
- `rolled_back`: the champion the last rollback demoted, kept addressable for a
  post-mortem (and for promoting it again on purpose: point `challenger` at it).

`promote`: champion → the challenger's version, previous → the old champion, and the
challenger alias is removed (that version is the champion now).
`rollback`: champion → previous, rolled_back → the demoted champion, and `previous` is
removed: a second rollback in a row refuses instead of flipping between two versions.

Every new version is tagged `agogosml.onnx` with its run's ONNX outcome ("parity", or
"failed: <reason>"; see agogosml.modelloop.onnx_export): the app scores the pipeline path
through the graph only for "parity". It never stops a registration.

With a lineage index configured, registering records the new version in it (see
agogosml.modelloop.lineage); a version that cannot be recorded is deleted again.

Every action tags the versions it touched (`agogosml.<action>_at`) and appends a line
to the registered model's history tags (`agogosml.history.0001`, …), so MLflow's UI shows
what happened and when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from agogosml.modelloop.errors import RegistryError
from agogosml.modelloop.gate import GateReport
from agogosml.modelloop.lineage import (
    LineageRecordError,
    lineage_index,
    record_version,
    require_lineage,
)
from agogosml.modelloop.onnx_export import outcome_for_registration
from agogosml.modelloop.tracking import (
    MODEL_URI_TAG,
    RUN_ID_TAG,
    TAG_PREFIX,
    TRIGGER_TAG,
    Tracking,
    alias_version,
    connect,
)

if TYPE_CHECKING:
    from agogosml.privacy.lineage import LineageIndex

from agogosml.services.app.onnx import ONNX_TAG

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS, ROLLED_BACK = "champion", "challenger", "previous", "rolled_back"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS, ROLLED_BACK)
HISTORY_PREFIX = f"{TAG_PREFIX}history."


def register_challenger(tracking: Tracking, report: GateReport, trigger: str = "manual", *,
                        lineage: LineageIndex | None = None) -> str:
    """Register the report's run as a new version with alias `challenger`; refuses a
    report that did not pass. With a lineage index (`lineage`, else the one at
    `tracking.lineage_url`) the version is recorded there before the alias moves."""
    if not report.passed:
        raise RegistryError(f"run {report.run_id} is not registered: gate {report.summary()}")
    if report.model_name != tracking.model_name:
        raise RegistryError(f"the gate report is for {report.model_name}, "
                            f"not {tracking.model_name}")
    connect(tracking)
    client = MlflowClient()
    run = _finished_run(client, report.run_id)
    digests = [item.dataset.digest for item in run.inputs.dataset_inputs] if run.inputs else []
    version = _register(client, tracking, run, lineage, {
        RUN_ID_TAG: report.run_id,
        TRIGGER_TAG: trigger,
        f"{TAG_PREFIX}roc_auc": f"{report.candidate_metrics['roc_auc']:.4f}",
        f"{TAG_PREFIX}gate": report.summary()[:5_000],
        f"{TAG_PREFIX}dataset_digest": ",".join(digests),
        f"{TAG_PREFIX}registered_at": _now(),
    })
    client.update_model_version(
        tracking.model_name, version,
        description=f"Trained by run {report.run_id} (trigger: {trigger}); gate "
                    f"{report.summary()}; holdout ROC AUC "
                    f"{report.candidate_metrics['roc_auc']:.4f}.")
    client.set_registered_model_alias(tracking.model_name, CHALLENGER, version)
    _history(client, tracking.model_name, f"register: v{version} is challenger "
                                          f"(run {report.run_id}, trigger {trigger})")
    log.info("challenger registered", extra={"model": tracking.model_name,
                                              "version": str(version), "run_id": report.run_id,
                                              "trigger": trigger})
    return str(version)


def bootstrap_champion(tracking: Tracking, run_id: str, trigger: str = "bootstrap", *,
                       lineage: LineageIndex | None = None) -> str:
    """Register a run's model and make it champion without a gate: how the demo model (and
    any first model, which has nothing to be gated against) starts. Every later champion
    should come through register_challenger and promote. Lineage as in
    register_challenger."""
    connect(tracking)
    client = MlflowClient()
    run = _finished_run(client, run_id)
    version = _register(client, tracking, run, lineage, {
        RUN_ID_TAG: run_id, TRIGGER_TAG: trigger,
        f"{TAG_PREFIX}roc_auc": f"{run.data.metrics['roc_auc']:.4f}",
        f"{TAG_PREFIX}registered_at": _now(),
    })
    client.set_registered_model_alias(tracking.model_name, CHAMPION, version)
    _history(client, tracking.model_name, f"bootstrap: v{version} is champion (run {run_id})")
    return version


def _finished_run(client: MlflowClient, run_id: str) -> Run:
    """The run, if it finished: a failed run (its lineage not recorded, say) is never
    registered."""
    run = client.get_run(run_id)
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        raise RegistryError(f"run {run_id} is {run.info.status}, not FINISHED: it is not "
                            "registered")
    return run


def _register(client: MlflowClient, tracking: Tracking, run: Run,
              lineage: LineageIndex | None, tags: dict[str, str]) -> str:
    """A new version of the run's model, recorded in the lineage index when there is one;
    a version whose lineage cannot be recorded is deleted again, before any alias."""
    run_id = run.info.run_id
    with lineage_index(tracking, lineage) as index:
        require_lineage(run, index)
        tags = {**tags, ONNX_TAG: outcome_for_registration(run_id)}
        version = str(mlflow.register_model(run.data.tags[MODEL_URI_TAG], tracking.model_name,
                                            tags=tags).version)
        if index is not None:
            try:
                record_version(index, run_id, tracking.model_name, version)
            except LineageRecordError:
                client.delete_model_version(tracking.model_name, version)
                raise
    return version


@dataclass(frozen=True)
class _Move:
    """Which alias becomes champion, and what the displaced champion is called after."""

    source: str
    displaced: str
    verb: str
    missing: str
    source_tag: str
    displaced_tag: str
    log_message: str


PROMOTE = _Move(CHALLENGER, PREVIOUS, "promote", "no challenger to promote",
                "promoted_at", "demoted_at", "challenger promoted")
ROLLBACK = _Move(PREVIOUS, ROLLED_BACK, "rollback", "no previous champion to roll back to",
                 "restored_at", "rolled_back_at", "champion rolled back")


def promote(tracking: Tracking) -> dict[str, str]:
    """champion ← challenger, previous ← old champion; returns the aliases after."""
    return _move_champion(tracking, PROMOTE)


def rollback(tracking: Tracking) -> dict[str, str]:
    """champion ← previous, rolled_back ← the demoted champion; returns the aliases after."""
    return _move_champion(tracking, ROLLBACK)


def _move_champion(tracking: Tracking, move: _Move) -> dict[str, str]:
    connect(tracking)
    client, name = MlflowClient(), tracking.model_name
    incoming = alias_version(name, move.source)
    if incoming is None:
        raise RegistryError(f"{name} has {move.missing}")
    champion = alias_version(name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, incoming)
    if champion is not None and champion != incoming:
        client.set_registered_model_alias(name, move.displaced, champion)
        client.set_model_version_tag(name, champion, f"{TAG_PREFIX}{move.displaced_tag}", _now())
    client.delete_registered_model_alias(name, move.source)
    client.set_model_version_tag(name, incoming, f"{TAG_PREFIX}{move.source_tag}", _now())
    again = " again" if move is ROLLBACK else ""
    _history(client, name, f"{move.verb}: v{incoming} is champion{again}"
                           + (f", v{champion} is {move.displaced}" if champion else ""))
    log.info(move.log_message, extra={"model": name, "champion": incoming,
                                      move.displaced: champion})
    return aliases(tracking)


def aliases(tracking: Tracking) -> dict[str, str]:
    """The loop's aliases that are set, each with its version."""
    connect(tracking)
    found = {alias: alias_version(tracking.model_name, alias) for alias in ALIASES}
    return {alias: version for alias, version in found.items() if version is not None}


def history(tracking: Tracking) -> list[str]:
    """The registered model's history lines, oldest first."""
    connect(tracking)
    tags = MlflowClient().get_registered_model(tracking.model_name).tags
    return [tags[key] for key in sorted(tags) if key.startswith(HISTORY_PREFIX)]


def _history(client: MlflowClient, name: str, line: str) -> None:
    tags = client.get_registered_model(name).tags
    number = 1 + sum(1 for key in tags if key.startswith(HISTORY_PREFIX))
    client.set_registered_model_tag(name, f"{HISTORY_PREFIX}{number:04d}", f"{_now()} {line}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
