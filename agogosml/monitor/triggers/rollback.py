"""`rollback`: move the serving model back to the one before.

A `RollbackTarget` does the move synchronously (it runs in a worker thread) and returns
what is served now; `ModelAliasRollback` moves the MLflow champion alias back. A
Kubernetes target (the `agogosml rollout rollback` path) only needs to implement the same
two members and a `target:` value in the rules file.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.tracking import Tracking
from agogosml.monitor.triggers.actions import FiringContext


class RollbackTarget(Protocol):
    @property
    def name(self) -> str: ...

    def rollback(self) -> str:
        """Moves back; returns what is served now. Raises ModelLoopError when it cannot."""
        ...


class ModelAliasRollback:
    """champion ← previous in the registry (agogosml.modelloop.registry.rollback); a second
    rollback in a row is refused there, so a flapping rule cannot bounce between two
    versions."""

    name = "model_alias"

    def __init__(self, tracking: Tracking) -> None:
        self.tracking = tracking

    def rollback(self) -> str:
        # MLflow is an optional, slow import: only a monitor with a rollback rule needs it.
        from agogosml.modelloop.registry import rollback

        after = rollback(self.tracking)
        return f"{self.tracking.model_name} champion v{after.get('champion', '?')}"


class RollbackAction:
    kind = "rollback"

    def __init__(self, target: RollbackTarget, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s

    async def run(self, context: FiringContext) -> str:
        try:
            served = await asyncio.to_thread(self.target.rollback)
        except ModelLoopError as error:
            return f"refused: {str(error)[:200]}"
        return f"ok ({served})"
