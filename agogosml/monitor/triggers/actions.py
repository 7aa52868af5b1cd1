"""What a firing does: the Action protocol, the runner that bounds it, and `notify`.

An action returns its outcome as a short string ("ok", "http 500", "timeout",
"unreachable", ...), recorded with the firing. `run_action` never raises: an action that
fails, hangs or raises becomes an outcome, so one broken target cannot stop the
evaluator or the other rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from agogosml.monitor.store.base import Json
from agogosml.monitor.triggers.metrics import TriggerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FiringContext:
    """What an action is told about the firing. `summary` is safe to log (rule, metric,
    value, alert name from the rules file); `evidence` may hold alert text and is not."""

    rule: str
    fired_at_ms: int
    evidence: Json
    summary: str


class Action(Protocol):
    @property
    def kind(self) -> str:
        """The action type as the rules file names it ("webhook", "retrain", ...)."""
        ...

    @property
    def timeout_s(self) -> float: ...

    async def run(self, context: FiringContext) -> str:
        """Does the work; returns the outcome. May raise: the runner records that."""
        ...


async def run_action(action: Action, context: FiringContext) -> str:
    try:
        return await asyncio.wait_for(action.run(context), action.timeout_s)
    except TimeoutError:
        return "timeout"
    except Exception as error:  # any failure of an action is its outcome, never ours
        log.warning("trigger action failed", exc_info=True,
                    extra={"rule": context.rule, "action": action.kind})
        return f"error: {type(error).__name__}"


class NotifyAction:
    """A WARNING log line (the rule and the summary, never the evidence) and a counter."""

    kind = "notify"

    def __init__(self, metrics: TriggerMetrics, timeout_s: float = 5.0) -> None:
        self.metrics = metrics
        self.timeout_s = timeout_s

    async def run(self, context: FiringContext) -> str:
        log.warning("trigger fired", extra={"rule": context.rule, "summary": context.summary,
                                            "fired_at_ms": context.fired_at_ms})
        self.metrics.notifications.labels(rule=context.rule).inc()
        return "ok"
