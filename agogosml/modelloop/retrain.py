"""The one entry point for every trigger: train → gate → register as `challenger`.

A person (CLI), a schedule, a drift monitor, a performance drop or a GDPR erasure all
call `retrain`; it never promotes. Promotion follows shadowing, by `promote`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from agogosml.modelloop.canned import CannedExample
from agogosml.modelloop.choices import TRIGGERS
from agogosml.modelloop.errors import ModelLoopError, RetrainInProgressError
from agogosml.modelloop.gate import GateLimits, GateReport, evaluate
from agogosml.modelloop.registry import register_challenger
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, train

log = logging.getLogger(__name__)

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
    trigger: str
    model_name: str
    run_id: str
    dataset_digest: str
    metrics: dict[str, float]
    gate: GateReport
    registered_version: str | None

    @property
    def registered(self) -> bool:
        return self.registered_version is not None

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "model_name": self.model_name, "run_id": self.run_id,
                "dataset_digest": self.dataset_digest, "metrics": self.metrics,
                "registered": self.registered, "registered_version": self.registered_version,
                "gate": self.gate.to_dict()}


def retrain(trigger: str, config: LoopConfig) -> RetrainResult:
    if trigger not in TRIGGERS:
        raise ModelLoopError(f"unknown trigger {trigger}; use one of {', '.join(TRIGGERS)}")
    if not _running.acquire(blocking=False):
        raise RetrainInProgressError("a retrain is already running")
    try:
        trained = train(config.tracking, config.train, trigger)
        report = evaluate(config.tracking, trained.run_id, config.limits, config.examples)
        version = register_challenger(config.tracking, report, trigger) if report.passed \
            else None
    finally:
        _running.release()
    log.info("retrain finished", extra={"trigger": trigger, "run_id": trained.run_id,
                                        "model": config.tracking.model_name,
                                        "registered_version": version})
    return RetrainResult(trigger, config.tracking.model_name, trained.run_id,
                         trained.dataset_digest, trained.metrics, report, version)
