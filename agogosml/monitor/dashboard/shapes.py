"""The JSON answers of the dashboard's store queries (/api/events, /api/counts,
/api/firings). Times are milliseconds since the epoch."""

from __future__ import annotations

from collections import Counter
from typing import TypedDict

from agogosml.monitor.store.base import Firing, Json, ScoredEvent, WindowCount, dumps, loads

TOP_PREDICTIONS = 20
"""Predictions /api/counts names one by one; the rest are summed (a regression model's
predictions are nearly all distinct)."""


class EventJson(TypedDict):
    event_id: str
    subject: str | None
    event_time_ms: int
    scored_at_ms: int
    model_name: str
    model_version: str
    prediction: Json
    scores: Json
    features: Json
    """The model's input columns, as it scored them."""


class EventsAnswer(TypedDict):
    events: list[EventJson]
    cursor: str | None
    """Pass it back as `cursor` for the next page; None: this was the last."""


class WindowJson(TypedDict):
    window_start_ms: int
    model_version: str
    count: int


class PredictionCount(TypedDict):
    prediction: Json
    count: int


class CountsAnswer(TypedDict):
    start_ms: int
    end_ms: int
    window_ms: int
    windows: list[WindowJson]
    """Events per window and model version, in window order; windows without events are
    left out."""
    predictions: list[PredictionCount]
    """The most frequent predictions over the range, most frequent first."""
    other_predictions: int
    """Events whose prediction is not among `predictions`."""


class FiringJson(TypedDict):
    id: int | None
    rule: str
    fired_at_ms: int
    action: str
    outcome: str
    evidence: Json


class FiringsAnswer(TypedDict):
    firings: list[FiringJson]
    """The latest ones in the range, oldest first."""
    truncated: bool
    """True when the range held more than were answered."""


def event_json(event: ScoredEvent) -> EventJson:
    return EventJson(event_id=event.event_id, subject=event.subject,
                     event_time_ms=event.event_time_ms, scored_at_ms=event.scored_at_ms,
                     model_name=event.model_name, model_version=event.model_version,
                     prediction=event.prediction, scores=event.scores, features=event.features)


def counts_answer(start_ms: int, end_ms: int, window_ms: int,
                  counts: list[WindowCount]) -> CountsAnswer:
    per_window: Counter[tuple[int, str]] = Counter()
    per_prediction: Counter[str] = Counter()
    for count in counts:
        per_window[(count.window_start_ms, count.model_version)] += count.count
        per_prediction[dumps(count.prediction)] += count.count
    top = per_prediction.most_common(TOP_PREDICTIONS)
    named = sum(n for _, n in top)
    return CountsAnswer(
        start_ms=start_ms, end_ms=end_ms, window_ms=window_ms,
        windows=[WindowJson(window_start_ms=start, model_version=version, count=n)
                 for (start, version), n in sorted(per_window.items())],
        predictions=[PredictionCount(prediction=loads(text), count=n) for text, n in top],
        other_predictions=sum(per_prediction.values()) - named)


def firing_json(firing: Firing) -> FiringJson:
    return FiringJson(id=firing.id, rule=firing.rule, fired_at_ms=firing.fired_at_ms,
                      action=firing.action, outcome=firing.outcome, evidence=firing.evidence)

