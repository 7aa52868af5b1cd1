"""Recent values of one series, and what a rule's window makes of them."""

from __future__ import annotations

from collections import deque
from itertools import pairwise

from agogosml.monitor.triggers.rules import Aggregate


class SeriesHistory:
    """Observations in time order, kept for `keep_s` seconds (the longest window of the
    rules that read the series). An observation older than the newest one is dropped; one
    at the same time replaces it, so evaluating the same snapshot twice changes nothing."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, at: float, value: float) -> None:
        if self._points and at <= self._points[-1][0]:
            if at < self._points[-1][0]:
                return
            self._points.pop()
        self._points.append((at, value))
        while self._points and self._points[0][0] < at - self.keep_s:
            self._points.popleft()

    def __len__(self) -> int:
        return len(self._points)

    def aggregate(self, kind: Aggregate, window_s: float, now: float) -> float | None:
        """The aggregate over (now - window, now]; None without observations there (or,
        for `increase`, with fewer than two)."""
        values = [value for at, value in self._points if now - window_s < at <= now]
        if not values:
            return None
        match kind:
            case "mean":
                return sum(values) / len(values)
            case "max":
                return max(values)
            case "min":
                return min(values)
            case "last":
                return values[-1]
            case "increase":
                return _increase(values)


def _increase(values: list[float]) -> float | None:
    """A counter's rise; a drop is a restart from zero, as Prometheus counts it."""
    if len(values) < 2:
        return None
    return sum(b - a if b >= a else b for a, b in pairwise(values))
