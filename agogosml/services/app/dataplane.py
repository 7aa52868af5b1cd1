"""The app's data plane: what scoring means, whichever route asked for it.

It owns the model being served, the batch scorer (inline or in a thread, bisection to
isolate the records a model fails on), the hand-over of scored batches to the writer,
shadow agreement, and the metrics of all that. The routers only read requests and
render answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from agogosml.envelope import BatchAnswer, BatchRequest, ScoredBatch, ScoredEvent
from agogosml.errors import BadRequestError
from agogosml.services.app.bodies import Table
from agogosml.services.app.metrics import AppMetrics
from agogosml.services.app.model import LoadedModel, Scores
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.scoring import Scorer
from agogosml.web.bodies import check_count
from agogosml.web.client import BatchClient

T = TypeVar("T")


class DataPlane:
    """Batches marked as shadow traffic go to `shadow_writer`, never to `writer`, so either
    colour can serve either role and a blue/green switch is only a change of Service
    selectors."""

    def __init__(self, models: ModelHolder, writer: BatchClient, metrics: AppMetrics,
                 shadow_writer: BatchClient | None = None, scorer: Scorer | None = None,
                 max_predict_records: int = 10_000) -> None:
        self.models = models
        self.writer = writer
        self.shadow_writer = shadow_writer
        self.metrics = metrics
        self.scorer = scorer or Scorer()
        self.max_predict_records = max_predict_records
        self._show(models.current, 1)

    def swapped(self, old: LoadedModel, fresh: LoadedModel) -> None:
        """What the model watcher calls after a hot swap."""
        self._show(old, 0)
        self._show(fresh, 1)

    def _show(self, model: LoadedModel, serving: int) -> None:
        self.metrics.model_info.labels(model=model.ref.name, version=model.ref.version) \
            .set(serving)

    async def score_records(self, model: LoadedModel, table: Table, endpoint: str) -> Scores:
        """The records of a request from a person or a client, cast to the model's
        signature and scored; any record that does not fit refuses the request."""
        return await self.in_thread(model, table.rows, endpoint,
                                    lambda: model.score(model.frame(table.columns, table.rows)))

    async def in_thread(self, model: LoadedModel, rows: int, endpoint: str,
                        work: Callable[[], T]) -> T:
        """Requests from people and clients may hold up to max_predict_records rows, so
        their work runs in a worker thread and probes stay answered meanwhile (pipeline
        batches: see scoring.Scorer)."""
        check_count(rows, self.max_predict_records, "records")
        started = time.perf_counter()
        result = await asyncio.to_thread(work)
        self.metrics.predict_latency.labels(endpoint=endpoint) \
            .observe(time.perf_counter() - started)
        self.metrics.scored.labels(endpoint=endpoint, model=model.ref.name,
                                   version=model.ref.version).inc(rows)
        return result

    def writer_for(self, shadow: bool) -> BatchClient:
        if not shadow:
            return self.writer
        if self.shadow_writer is None:
            raise BadRequestError("shadow batch refused: this app has no shadow writer "
                                  "(AGOGOSML_APP_SHADOW_WRITER_URL)")
        return self.shadow_writer

    async def score_batch(self, batch: BatchRequest, shadow: bool, echo: bool) -> BatchAnswer:
        """Score, hand the scored events to the writer (the shadow writer for a shadow
        batch), and answer only after it acknowledged; records the model fails on are
        answered as refusals by position."""
        destination = self.writer_for(shadow)
        model = self.models.current
        started = time.perf_counter()
        result = await self.scorer.score(model, batch.events)
        self.metrics.predict_latency.labels(endpoint="batch") \
            .observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(endpoint="batch").observe(len(batch.events))
        if result.scored:
            forwarded = time.perf_counter()
            await destination.post(ScoredBatch(result.scored).to_json())
            self.metrics.forward_latency.observe(time.perf_counter() - forwarded)
        self.metrics.scored.labels(endpoint="batch", model=model.ref.name,
                                   version=model.ref.version).inc(len(result.scored))
        self.metrics.rejected.labels(endpoint="batch").inc(len(result.rejected))
        self.metrics.count_predictions(model.ref, [event.prediction for event in result.scored])
        if shadow:
            self._compare_with_production(result.scored, batch.reference)
        predictions = {event.id: event.prediction for event in result.scored} if echo else None
        return BatchAnswer(len(result.scored), result.rejected, predictions)

    def _compare_with_production(self, scored: list[ScoredEvent],
                                 reference: dict[str, Any] | None) -> None:
        if reference is None:
            return
        compared = [event for event in scored if event.id in reference]
        self.metrics.shadow_compared.inc(len(compared))
        self.metrics.shadow_agreed.inc(
            sum(event.prediction == reference[event.id] for event in compared))

    async def writer_reachable(self, health_url: str) -> bool:
        return await self.writer.is_reachable(health_url)

    async def close(self) -> None:
        await self.writer.aclose()
        if self.shadow_writer is not None:
            await self.shadow_writer.aclose()
