"""The one entry point for every trigger: train → gate → register as `challenger`.

A person (CLI), a schedule, a drift monitor, a performance drop or a GDPR erasure all
call `retrain`; it never promotes. Promotion follows shadowing, by `promote`.

An erasure retrains on a dataset that no longer holds the forgotten subjects. When the
loop trains sharded models (`TrainConfig.shards` ≥ 1) it reuses the champion's run: only
the shards that held a forgotten subject are fitted again, the others are copied
(agogosml.modelloop.training). `reuse_from` names another run to reuse, for any trigger.
Lineage (the run's subjects, the registered version) is recorded in the index passed in or
configured in `Tracking.lineage_url`, opened once for the whole retrain.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agogosml.modelloop.canned import CannedExample
from agogosml.modelloop.choices import TRIGGERS
from agogosml.modelloop.errors import ModelLoopError, RetrainInProgressError
from agogosml.modelloop.gate import GateLimits, GateReport, evaluate
from agogosml.modelloop.lineage import lineage_index
from agogosml.modelloop.registry import CHAMPION, register_challenger
from agogosml.modelloop.tracking import ABSENT, RUN_ID_TAG, Tracking, connect
from agogosml.modelloop.training import TrainConfig, TrainResult, train

if TYPE_CHECKING:
    from agogosml.privacy.lineage import LineageIndex

log = logging.getLogger(__name__)

ERASURE = "erasure"

# One retrain at a time per process: two would race for the challenger alias.
_running = threading.Lock()


@dataclass(frozen=True)
class LoopConfig:
    """Everything a retrain needs. `examples` None means the demo's canned examples when
    the features are the demo's, none otherwise."""

    tracking: Tracking
    train: TrainConfig
    limits: GateLimits = field(default_factory=GateLimits)
    examples: tuple[CannedExample, ...] | None = None


@dataclass(frozen=True)
class RetrainResult:
    """`fitted_shards` and `reused_shards` are empty for a single model; `reused_from` is
    the run whose shards were offered for reuse (None: none was)."""

    trigger: str
    model_name: str
    run_id: str
    dataset_digest: str
    metrics: dict[str, float]
    gate: GateReport
    registered_version: str | None
    fitted_shards: tuple[int, ...] = ()
    reused_shards: tuple[int, ...] = ()
    reused_from: str | None = None

    @property
    def registered(self) -> bool:
        return self.registered_version is not None

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "model_name": self.model_name, "run_id": self.run_id,
                "dataset_digest": self.dataset_digest, "metrics": self.metrics,
                "registered": self.registered, "registered_version": self.registered_version,
                "fitted_shards": list(self.fitted_shards),
                "reused_shards": list(self.reused_shards), "reused_from": self.reused_from,
                "gate": self.gate.to_dict()}


def retrain(trigger: str, config: LoopConfig, *, reuse_from: str | None = None,
            lineage: LineageIndex | None = None) -> RetrainResult:
    """Train, gate, register as challenger. `reuse_from`: a sharded run whose unchanged
    shards to reuse; by default an erasure reuses the champion's run when training is
    sharded. `lineage`: an open index, else the one at `config.tracking.lineage_url`."""
    if trigger not in TRIGGERS:
        raise ModelLoopError(f"unknown trigger {trigger}; use one of {', '.join(TRIGGERS)}")
    if not _running.acquire(blocking=False):
        raise RetrainInProgressError("a retrain is already running")
    try:
        with lineage_index(config.tracking, lineage) as index:
            source = reuse_from if reuse_from is not None else _default_reuse(trigger, config)
            trained = train(config.tracking, config.train, trigger, reuse_from=source,
                            lineage=index)
            report = evaluate(config.tracking, trained.run_id, config.limits, config.examples)
            version = register_challenger(config.tracking, report, trigger, lineage=index) \
                if report.passed else None
    finally:
        _running.release()
    log.info("retrain finished", extra={"trigger": trigger, "run_id": trained.run_id,
                                        "model": config.tracking.model_name,
                                        "registered_version": version,
                                        "fitted_shards": list(trained.fitted_shards)})
    return _result(trigger, config, trained, report, version)


def _result(trigger: str, config: LoopConfig, trained: TrainResult, report: GateReport,
            version: str | None) -> RetrainResult:
    return RetrainResult(trigger, config.tracking.model_name, trained.run_id,
                         trained.dataset_digest, trained.metrics, report, version,
                         trained.fitted_shards, trained.reused_shards, trained.reused_from)


def _default_reuse(trigger: str, config: LoopConfig) -> str | None:
    """For an erasure with sharded training: the champion's run, if there is a champion."""
    if trigger != ERASURE or not config.train.shards:
        return None
    return champion_run_id(config.tracking)


def champion_run_id(tracking: Tracking) -> str | None:
    """The run the champion version was trained by, or None without a champion."""
    connect(tracking)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(tracking.model_name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ABSENT:
            return None
        raise
    run_id = version.tags.get(RUN_ID_TAG) or version.run_id
    return str(run_id) if run_id else None
