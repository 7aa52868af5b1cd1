"""Scoring a pipeline batch: one vectorized call, and when the model refuses the batch,
record by record so one bad record does not sink the others."""

from __future__ import annotations

import time
from dataclasses import dataclass

from agogosml.envelope import Event, ScoredEvent
from agogosml.errors import ModelInputError
from agogosml.services.app.model import LoadedModel, Scores


@dataclass(frozen=True, slots=True)
class BatchResult:
    scored: list[ScoredEvent]
    rejected: list[dict[str, str]]


def score_events(model: LoadedModel, events: list[Event]) -> BatchResult:
    try:
        scores = model.score(model.frame([event.payload for event in events]))
        return BatchResult(_scored(model, events, scores), [])
    except ModelInputError:
        pass  # find which records the model refuses
    scored: list[ScoredEvent] = []
    rejected: list[dict[str, str]] = []
    for event in events:
        try:
            one = model.score(model.frame([event.payload]))
        except ModelInputError as error:
            rejected.append({"id": event.id, "reason": str(error)})
            continue
        scored.extend(_scored(model, [event], one))
    return BatchResult(scored, rejected)


def _scored(model: LoadedModel, events: list[Event], scores: Scores) -> list[ScoredEvent]:
    now_ms = int(time.time() * 1000)
    return [
        ScoredEvent(id=event.id, time_ms=event.time_ms, subject=event.subject, model=model.ref,
                    prediction=prediction, scores=row_scores, scored_at_ms=now_ms)
        for event, prediction, row_scores in zip(events, scores.predictions, scores.scores,
                                                 strict=True)
    ]
