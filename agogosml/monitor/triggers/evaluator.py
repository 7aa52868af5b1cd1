"""Metric rules over the monitor's metric values, tick by tick.

The monitor calls `evaluate(snapshot, now)` with its current values, keyed by selector
text ("drift_alarms_total", "drift_psi{feature=amount}", "roc_auc{model_version=3}"; see
agogosml.monitor.triggers.selectors). Each rule compares the aggregate of every matching
series over its window with its threshold; the rule's condition holds while at least one
series compares true, and it fires once the condition has held for the rule's `for` and
the rule is not cooling down. A series without observations in the window does not hold.
One firing per rule, whichever and however many series breached: its evidence lists them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agogosml.monitor.store.base import Firing, Json
from agogosml.monitor.triggers.dispatch import Dispatcher
from agogosml.monitor.triggers.errors import RulesError
from agogosml.monitor.triggers.history import SeriesHistory
from agogosml.monitor.triggers.rules import MetricRule
from agogosml.monitor.triggers.selectors import Selector, parse_selector

log = logging.getLogger(__name__)

MAX_SERIES = 10_000
"""Series remembered at most (only those some rule reads are kept at all)."""
MAX_EVIDENCE_SERIES = 20
_MAX_WARNED_KEYS = 100


@dataclass(frozen=True)
class Observation:
    series: Selector
    value: float
    at: float
    """Seconds since the epoch."""


@dataclass
class _RuleState:
    rule: MetricRule
    selector: Selector
    holding_since: float | None = None
    series: list[Selector] = field(default_factory=list)


class Evaluator:
    def __init__(self, rules: Sequence[MetricRule], dispatcher: Dispatcher,
                 clock: Callable[[], float] = time.time) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self._states = [_RuleState(rule, rule.selector) for rule in rules]
        self._history: dict[Selector, SeriesHistory] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def observe(self, observations: Iterable[Observation]) -> None:
        """Adds observations without evaluating (values arriving between ticks)."""
        with self._lock:
            for observation in observations:
                self._add(observation)

    async def evaluate(self, snapshot: Mapping[str, float],
                       now: float | None = None) -> list[asyncio.Task[Firing]]:
        """Records the snapshot at `now` (default: the clock) and starts the actions of the
        rules due to fire; each task's result is the recorded firing."""
        at = self.clock() if now is None else now
        observations = list(self._parse(snapshot, at))
        with self._lock:
            for observation in observations:
                self._add(observation)
            due = [(state, evidence) for state in self._states
                   if (evidence := self._check(state, at)) is not None]
        started = []
        for state, (summary, evidence) in due:
            task = self.dispatcher.fire(state.rule.name, at, evidence, summary)
            if task is not None:
                started.append(task)
        return started

    def _parse(self, snapshot: Mapping[str, float], at: float) -> Iterable[Observation]:
        for key, value in snapshot.items():
            try:
                series = parse_selector(key)
            except RulesError:
                if key not in self._warned and len(self._warned) < _MAX_WARNED_KEYS:
                    self._warned.add(key)
                    log.warning("metric key is not a selector; ignored",
                                extra={"key": key[:100]})
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield Observation(series, float(value), at)

    def _add(self, observation: Observation) -> None:
        if not math.isfinite(observation.value):
            return
        history = self._history.get(observation.series)
        if history is None:
            readers = [s for s in self._states if s.selector.matches(observation.series)]
            if not readers or len(self._history) >= MAX_SERIES:
                return
            history = SeriesHistory(max(s.rule.window for s in readers))
            self._history[observation.series] = history
            for state in readers:
                state.series.append(observation.series)
        history.add(observation.at, observation.value)

    def _check(self, state: _RuleState, now: float) -> tuple[str, Json] | None:
        """(summary, evidence) when the rule is due to fire: its condition has held long
        enough. Whether its cool-down allows it is the dispatcher's call."""
        rule = state.rule
        breaching: dict[str, float] = {}
        for series in state.series:
            value = self._history[series].aggregate(rule.aggregate, rule.window, now)
            if value is not None and rule.holds(value):
                breaching[str(series)] = value
        if not breaching:
            state.holding_since = None
            return None
        if state.holding_since is None:
            state.holding_since = now
        if now - state.holding_since < rule.hold:
            return None
        worst = max(breaching.items(), key=lambda item: abs(item[1] - rule.threshold))
        summary = (f"{worst[0]} {rule.aggregate} {worst[1]:.6g} {rule.comparison} "
                   f"{rule.threshold:g}" + (f" (+{len(breaching) - 1} series)"
                                            if len(breaching) > 1 else ""))
        shown = dict(sorted(breaching.items())[:MAX_EVIDENCE_SERIES])
        evidence = {"kind": "metric", "metric": rule.metric, "aggregate": rule.aggregate,
                    "window_s": rule.window, "comparison": rule.comparison,
                    "threshold": rule.threshold, "for_s": rule.hold,
                    "holding_since_ms": int(state.holding_since * 1000),
                    "series": shown, "series_breaching": len(breaching)}
        return summary, evidence
