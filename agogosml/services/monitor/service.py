"""The monitor's HTTP face and its background work.

For the app's lifetime it runs: the scored-event ingestor (output topic -> store), the label
ingestor (feedback topic -> store), a ticker that refreshes drift, performance and the
services' counters and then evaluates the trigger rules, and a compactor that folds old
events into rollups. Routes: the probes and /metrics, the dashboard (GET /, /api/*),
`POST /v1/labels` and, with trigger rules, Alertmanager's `POST /v1/alerts` (both take the
API token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CollectorRegistry

from agogosml.errors import BadRequestError
from agogosml.monitor.dashboard import dashboard_router
from agogosml.monitor.ingest import Ingestor, TopicIngestor
from agogosml.monitor.labels import LabelIngestor, parse_labels
from agogosml.monitor.state import MonitorState
from agogosml.monitor.triggers import Triggers
from agogosml.privacy.forget.router import ForgetWorker, forget_router
from agogosml.privacy.lineage.router import lineage_router
from agogosml.services.monitor.metrics import register
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.bodies import check_count, read_json
from agogosml.web.errors import install_error_handlers
from agogosml.web.probes import Problem, probe_router
from agogosml.web.responses import JsonResponse

log = logging.getLogger(__name__)

MAX_LABELS_BODY_BYTES = 4 * 1024 * 1024
MAX_LABELS = 10_000
Tick = Callable[[], Awaitable[None]]


class Background:
    """Named tasks that run for the app's lifetime; one that ends early is a liveness
    problem (Kubernetes restarts the pod), with its reason."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self.tasks[name] = asyncio.create_task(work, name=name)

    def problem(self) -> Problem | None:
        for name, task in self.tasks.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                detail = type(error).__name__ if error is not None else "ended"
                return Problem(f"{name} stopped", detail)
        return None

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _every(interval_s: float, work: Tick, what: str) -> None:
    while True:
        started = time.monotonic()
        try:
            await work()
        except Exception as error:  # one bad round must not end the loop
            log.exception("%s failed", what, extra={"error": type(error).__name__})
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))


async def _ingest(ingestor: TopicIngestor[Any]) -> None:
    await ingestor.source.start()
    try:
        await ingestor.run()
    finally:
        await ingestor.source.stop()


def labels_router(state: MonitorState, guard: Guard) -> APIRouter:
    router = APIRouter(tags=["labels"])

    @router.post("/v1/labels", dependencies=[Depends(guard)])
    async def post_labels(request: Request) -> JsonResponse:
        """Ground truth for scored events: {"labels": [{"id": ..., "label": ...}]}."""
        body = await read_json(request, MAX_LABELS_BODY_BYTES)
        if not isinstance(body, dict) or not isinstance(body.get("labels"), list):
            raise BadRequestError("body must be an object with a list under 'labels'")
        check_count(len(body["labels"]), MAX_LABELS, "labels")
        labels = parse_labels(body["labels"], time.time_ns() // 1_000_000)
        await state.store.add_labels(labels)
        state.labels_counts.stored += len(labels)
        return JsonResponse({"stored": len(labels)})

    return router


@dataclass(frozen=True)
class GdprApi:
    """The GDPR endpoints' worker, and what closes the stores behind it."""

    worker: ForgetWorker
    close: Callable[[], None]


def create_app(state: MonitorState, events: Ingestor, labels: LabelIngestor,
               registry: CollectorRegistry, api: Credentials, *,
               triggers: Triggers | None = None, tick_s: float = 5.0,
               compact_every_s: float = 300.0, gdpr: GdprApi | None = None) -> FastAPI:
    """`events` and `labels` must count into `state.events_counts`/`state.labels_counts`
    and hand stored events to `state.on_stored` (see `wiring.build_app`)."""
    register(state, registry)
    auth_metrics = AuthMetrics(registry)
    guard = Guard(api, auth_metrics, "monitor")
    background = Background()

    async def tick() -> None:
        await state.tick()
        if triggers is not None:
            await triggers.evaluate(state.metric_snapshot())

    async def compact() -> None:
        folded = await state.store.compact(time.time_ns() // 1_000_000)
        if folded:
            log.info("compacted", extra={"events": folded})

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if triggers is not None:
            await triggers.start()
        background.start("events ingest", _ingest(events))
        background.start("labels ingest", _ingest(labels))
        background.start("ticker", _every(tick_s, tick, "monitor tick"))
        background.start("compactor", _every(compact_every_s, compact, "compaction"))
        if gdpr is not None:
            await gdpr.worker.resume()
        try:
            yield
        finally:
            if gdpr is not None:
                await gdpr.worker.wait()
                gdpr.close()
            events.stop()
            labels.stop()
            await background.stop()
            if triggers is not None:
                await triggers.aclose()
            await state.store.close()

    async def readiness() -> dict[str, bool]:
        store_ok = True
        try:
            await asyncio.wait_for(state.store.schema_version(), timeout=2.0)
        except Exception:  # any driver error or a timeout: not ready
            store_ok = False
        return {"store": store_ok, "events": await events.source.is_ready(),
                "labels": await labels.source.is_ready()}

    app = FastAPI(title="agogosml monitor", lifespan=lifespan,
                  default_response_class=JsonResponse)
    install_error_handlers(app)
    app.include_router(probe_router(registry, readiness, background.problem))
    app.include_router(labels_router(state, guard))
    if triggers is not None:
        app.include_router(triggers.router(api, auth_metrics))
    if gdpr is not None:
        app.include_router(lineage_router(gdpr.worker.forgetter.lineage, api, auth_metrics))
        app.include_router(forget_router(gdpr.worker, api, auth_metrics))
    app.include_router(dashboard_router(state))
    return app

