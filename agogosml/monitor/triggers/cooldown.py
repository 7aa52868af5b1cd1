"""Cool-downs: a rule acts at most once per its cool-down, whoever asks and however often.

`claim` is the one decision point: checking and taking the rule's slot happen under one
lock, so concurrent evaluations (tasks or threads) and repeated Alertmanager deliveries
cannot both win. The slot is taken before the action runs, so a slow action cannot be
started twice either. A failed action still uses its slot: a broken target is retried
after the cool-down, not in a storm.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from agogosml.monitor.store.base import Firing


class CoolDowns:
    def __init__(self, cool_downs_s: Mapping[str, float]) -> None:
        self._cool_downs = dict(cool_downs_s)
        self._last_fired: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, rule: str, now: float) -> bool:
        """True, and the rule's cool-down starts at `now`, if the rule may fire now."""
        with self._lock:
            last = self._last_fired.get(rule)
            if last is not None and now < last + self._cool_downs[rule]:
                return False
            self._last_fired[rule] = now
            return True

    def cooling(self, rule: str, now: float) -> bool:
        with self._lock:
            last = self._last_fired.get(rule)
            return last is not None and now < last + self._cool_downs[rule]

    def restore(self, firings: Iterable[Firing]) -> None:
        """Takes the latest recorded firing of each known rule as its last (at start-up, so
        a restart does not repeat an action inside its cool-down)."""
        with self._lock:
            for firing in firings:
                if firing.rule not in self._cool_downs:
                    continue  # a rule since removed from the file
                at = firing.fired_at_ms / 1000
                if at > self._last_fired.get(firing.rule, float("-inf")):
                    self._last_fired[firing.rule] = at

    def longest_s(self) -> float:
        return max(self._cool_downs.values(), default=0.0)
