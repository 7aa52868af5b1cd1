"""The pipeline's recent pace as ingestion sees it: events per second, event-to-score
latency quantiles and the prediction mix over the last `window_s` seconds.

Kept in memory per stored batch (its time, size, latencies and prediction counts), for
the window and at most `max_batches` batches (the newest win).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agogosml.monitor.store.base import ScoredEvent, dumps

MAX_PREDICTION_KEY = 64


class LiveStats:
    def __init__(self, window_s: float = 60.0, max_batches: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self._clock = clock
        # Per stored batch: when, how many, their latencies, their predictions' counts.
        self._batches: deque[tuple[float, int, np.ndarray[Any, Any], Counter[str]]] = deque(
            maxlen=max_batches)

    def observe(self, events: Sequence[ScoredEvent]) -> None:
        if not events:
            return
        latencies = np.fromiter((e.scored_at_ms - e.event_time_ms for e in events),
                                dtype=float, count=len(events))
        predictions = Counter(_key(event.prediction) for event in events)
        self._batches.append((self._clock(), len(events), latencies, predictions))

    def _recent(self) -> list[tuple[float, int, np.ndarray[Any, Any], Counter[str]]]:
        oldest = self._clock() - self.window_s
        while self._batches and self._batches[0][0] < oldest:
            self._batches.popleft()
        return list(self._batches)

    def events_per_s(self) -> float:
        return sum(count for _, count, _, _ in self._recent()) / self.window_s

    def latency_ms(self, quantile: float) -> float | None:
        recent = self._recent()
        if not recent:
            return None
        return float(np.quantile(np.concatenate([lat for _, _, lat, _ in recent]), quantile))

    def prediction_shares(self) -> dict[str, float]:
        counts: Counter[str] = Counter()
        for _, _, _, predictions in self._recent():
            counts.update(predictions)
        total = sum(counts.values())
        return {key: count / total for key, count in counts.most_common(20)}


def _key(prediction: object) -> str:
    text = prediction if isinstance(prediction, str) else dumps(prediction)
    return text[:MAX_PREDICTION_KEY]
