"""The pipeline's recent pace as ingestion sees it: events per second, event-to-score
latency quantiles and the prediction mix over the last `window_s` seconds.

Kept in memory, bounded: per-second buckets for the rate, and at most `max_samples`
recent latencies and predictions (the newest win).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

import numpy as np

from agogosml.monitor.store.base import ScoredEvent, dumps

MAX_PREDICTION_KEY = 64


class LiveStats:
    def __init__(self, window_s: float = 60.0, max_samples: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self._clock = clock
        self._per_second: deque[tuple[int, int]] = deque()
        self._latencies: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._predictions: deque[tuple[float, str]] = deque(maxlen=max_samples)

    def observe(self, events: Sequence[ScoredEvent]) -> None:
        now = self._clock()
        second = int(now)
        if self._per_second and self._per_second[-1][0] == second:
            self._per_second[-1] = (second, self._per_second[-1][1] + len(events))
        else:
            self._per_second.append((second, len(events)))
        for event in events:
            self._latencies.append((now, float(event.scored_at_ms - event.event_time_ms)))
            self._predictions.append((now, _key(event.prediction)))
        self._trim(now)

    def _trim(self, now: float) -> None:
        oldest = now - self.window_s
        while self._per_second and self._per_second[0][0] < int(oldest):
            self._per_second.popleft()
        while self._latencies and self._latencies[0][0] < oldest:
            self._latencies.popleft()
        while self._predictions and self._predictions[0][0] < oldest:
            self._predictions.popleft()

    def events_per_s(self) -> float:
        self._trim(self._clock())
        return sum(count for _, count in self._per_second) / self.window_s

    def latency_ms(self, quantile: float) -> float | None:
        self._trim(self._clock())
        if not self._latencies:
            return None
        values = np.fromiter((latency for _, latency in self._latencies), dtype=float)
        return float(np.quantile(values, quantile))

    def prediction_shares(self) -> dict[str, float]:
        self._trim(self._clock())
        counts = Counter(key for _, key in self._predictions)
        total = sum(counts.values())
        return {key: count / total for key, count in counts.most_common(20)}


def _key(prediction: object) -> str:
    text = prediction if isinstance(prediction, str) else dumps(prediction)
    return text[:MAX_PREDICTION_KEY]
