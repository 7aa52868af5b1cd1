"""Scoring a pipeline batch: one vectorized call, and when the model fails on the batch,
bisection, so that only the records it fails on are rejected, each with the reason.

With k failing records among n, bisection costs O(k log n) predict calls instead of
the n of scoring record by record.

Where it runs: the event loop must stay free to answer probes (/healthz within 100 ms).
A first vectorized call of a small batch runs on the loop, because handing it to a
thread costs latency and throughput (the loop and the thread trade the GIL every 5 ms
switch interval); everything else runs in a worker thread. "Small" is both a size, at
most `inline_max_events` records, and a measured cost (see Scorer). A model not yet
measured (just loaded or swapped in) is scored in a thread until it is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agogosml.envelope import (
    INT64_MAX,
    INT64_MIN,
    Event,
    ModelRef,
    Refusal,
    ScoredEvent,
    output_problem,
)
from agogosml.errors import ModelInputError
from agogosml.services.app.features import ModelInput
from agogosml.services.app.model import LoadedModel, Scores

INLINE_MAX_EVENTS = 1_000
"""The demo model scores 500 records in ~13 ms, 1,000 in ~20 ms, 10,000 in ~75 ms (outliers
to 4x on a loaded 2-core machine). With the app in its own process and /healthz polled
every 5 ms, the slowest answer was 26 ms during 1,000-event batches scored inline, 31 ms
during 10,000-event batches scored in the thread."""

INLINE_BUDGET_S = 0.025
"""A model whose calls take longer is never scored on the loop, whatever the batch size."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    scored: list[ScoredEvent]
    rejected: list[Refusal]


class Scorer:
    """Two costs are kept per model version, each rising at once with a slow call and
    decaying slowly:

    - the wall time of calls on the loop: what the loop really paid, including a model
      that blocks without computing (a remote call, a sleep);
    - the CPU time of calls in the worker thread. Not their wall time: waiting for the
      GIL while the loop serves other requests would make the model look slow, keep it
      off the loop, and so keep it slow.

    A batch runs on the loop only while both are within the budget. A model that blocks
    is on the loop for one call at most, then stays off it."""

    def __init__(self, inline_max_events: int = INLINE_MAX_EVENTS,
                 inline_budget_s: float = INLINE_BUDGET_S) -> None:
        self.inline_max_events = inline_max_events
        self.inline_budget_s = inline_budget_s
        self._loop_cost_s: dict[ModelRef, float] = {}
        self._cpu_cost_s: dict[ModelRef, float] = {}

    async def score(self, model: LoadedModel, events: list[Event]) -> BatchResult:
        if not self._inline(model, len(events)):
            return await asyncio.to_thread(self._in_thread, model, events)
        result = self._vectorized(model, events, self._loop_cost_s, time.perf_counter)
        if result is None:
            return await asyncio.to_thread(_bisect, model, events)
        return result

    def _inline(self, model: LoadedModel, count: int) -> bool:
        cpu = self._cpu_cost_s.get(model.ref)
        return count <= self.inline_max_events and cpu is not None \
            and cpu <= self.inline_budget_s \
            and self._loop_cost_s.get(model.ref, 0.0) <= self.inline_budget_s

    def _in_thread(self, model: LoadedModel, events: list[Event]) -> BatchResult:
        result = self._vectorized(model, events, self._cpu_cost_s, time.thread_time)
        return _bisect(model, events) if result is None else result

    def _vectorized(self, model: LoadedModel, events: list[Event],
                    costs: dict[ModelRef, float],
                    clock: Callable[[], float]) -> BatchResult | None:
        """One call for the whole batch, its cost (by `clock`) noted in `costs`; None
        when the model refuses the batch."""
        started = clock()
        try:
            inputs, chunk, refused = _fitting(model, list(enumerate(events)))
            scores = model.score_input(inputs) if chunk else None
        except ModelInputError:
            return None
        finally:
            self._observe(costs, model.ref, clock() - started, len(events))
        if scores is None:
            return BatchResult([], refused)
        result = _result(model, chunk, scores, inputs)
        return BatchResult(result.scored, _by_index(refused, result.rejected))

    def _observe(self, costs: dict[ModelRef, float], ref: ModelRef, seconds: float,
                 count: int) -> None:
        if count > self.inline_max_events:
            return
        previous = costs.get(ref, seconds)
        costs[ref] = max(seconds, 0.8 * previous + 0.2 * seconds)


def score_events(model: LoadedModel, events: list[Event]) -> BatchResult:
    """The batch scored in the calling thread, exactly as a pipeline batch is: for engines
    that bring their own workers (Spark's Python workers, agogosml.engines.spark)."""
    return _bisect(model, events)


def _bisect(model: LoadedModel, events: list[Event]) -> BatchResult:
    """Depth first, left half before right, so results keep the order of the events."""
    scored: list[ScoredEvent] = []
    rejected: list[Refusal] = []
    pending = [list(enumerate(events))]
    while pending:
        inputs, chunk, refused = _fitting(model, pending.pop())
        rejected = _by_index(rejected, refused)
        if not chunk:
            continue
        try:
            scores = model.score_input(inputs)
        except ModelInputError as error:
            if len(chunk) == 1:
                rejected = _by_index(rejected, [Refusal(chunk[0][0], chunk[0][1].id,
                                                        str(error))])
            else:
                middle = len(chunk) // 2
                pending.extend((chunk[middle:], chunk[:middle]))
            continue
        result = _result(model, chunk, scores, inputs)
        scored.extend(result.scored)
        rejected = _by_index(rejected, result.rejected)
    return BatchResult(scored, rejected)


def _fitting(model: LoadedModel, chunk: list[tuple[int, Event]]
             ) -> tuple[ModelInput, list[tuple[int, Event]], list[Refusal]]:
    """The chunk's records as the model takes them, the events among them that fit its
    signature, and a refusal for each of the others."""
    inputs = model.inputs([event.payload for _, event in chunk])
    if not inputs.refused:
        return inputs, chunk, []
    refused = [Refusal(chunk[row][0], chunk[row][1].id, reason)
               for row, reason in sorted(inputs.refused.items())]
    kept = [chunk[row] for row in inputs.kept or ()]
    return inputs, kept, refused


def _by_index(first: list[Refusal], second: list[Refusal]) -> list[Refusal]:
    if not second:
        return first
    if not first:
        return second
    return sorted(first + second, key=lambda refusal: refusal.index)


def _result(model: LoadedModel, chunk: list[tuple[int, Event]], scores: Scores,
            inputs: ModelInput) -> BatchResult:
    now_ms = int(time.time() * 1000)
    problems = _problems(scores)
    features = inputs.features()
    if not problems:
        return BatchResult([
            ScoredEvent(id=event.id, time_ms=event.time_ms, subject=event.subject,
                        model=model.ref, prediction=prediction, scores=row_scores,
                        scored_at_ms=now_ms, features=row_features)
            for (_, event), prediction, row_scores, row_features in zip(
                chunk, scores.predictions, scores.scores, features, strict=True)], [])
    scored: list[ScoredEvent] = []
    rejected: list[Refusal] = []
    for row, ((index, event), prediction, row_scores, row_features) in enumerate(
            zip(chunk, scores.predictions, scores.scores, features, strict=True)):
        if row in problems:
            rejected.append(Refusal(index, event.id, f"model output: {problems[row]}"))
            continue
        scored.append(ScoredEvent(id=event.id, time_ms=event.time_ms, subject=event.subject,
                                  model=model.ref, prediction=prediction, scores=row_scores,
                                  scored_at_ms=now_ms, features=row_features))
    return BatchResult(scored, rejected)


def _problems(scores: Scores) -> dict[int, str]:
    """The rows whose output cannot travel as a scored event. A cheap check of the whole
    batch comes first (score names are strings already: model.py makes them so), so a
    clean batch, the usual case, costs a few percent less than checking row by row."""
    try:
        if _clean(scores.predictions) and math.isfinite(sum(map(sum, map(dict.values,
                                                                          scores.scores)))):
            return {}
    except (TypeError, OverflowError):  # a score that is not a float
        pass
    found = {}
    for row, (prediction, row_scores) in enumerate(zip(scores.predictions, scores.scores,
                                                       strict=True)):
        problem = output_problem(prediction, row_scores)
        if problem is not None:
            found[row] = problem
    return found


def _clean(predictions: list[Any]) -> bool:
    """Whether every prediction is a plain JSON scalar, judged by type a batch at once."""
    kinds = set(map(type, predictions))
    if kinds <= {str, bool, type(None)}:
        return True
    if kinds == {int}:
        return bool(min(predictions) >= INT64_MIN and max(predictions) <= INT64_MAX)
    return kinds == {float} and math.isfinite(sum(predictions))
