"""The output writer's HTTP API: POST /v1/batches writes a scored batch to the sink.

Each event becomes one record keyed by its id, so consumers (and Kafka's log
compaction, if enabled) can drop the duplicates at-least-once delivery allows.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from agogosml.envelope import decode_batch, dumps
from agogosml.errors import BadRequestError, SinkError
from agogosml.services.output_writer.metrics import WriterMetrics
from agogosml.streaming.base import OutRecord, Sink
from agogosml.web.errors import install_error_handlers
from agogosml.web.probes import probe_router
from agogosml.web.responses import JsonResponse


def to_record(event: Any) -> OutRecord:
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise BadRequestError("each scored event must be an object with a string 'id'")
    return OutRecord(value=dumps(event), key=event["id"].encode())


def create_app(sink: Sink, registry: CollectorRegistry) -> FastAPI:
    metrics = WriterMetrics(registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        try:
            yield
        finally:
            await sink.stop()

    async def readiness() -> dict[str, bool]:
        return {"sink": await sink.is_ready()}

    app = FastAPI(title="agogosml output writer", lifespan=lifespan,
                  default_response_class=JsonResponse)
    install_error_handlers(app)
    app.include_router(probe_router(registry, readiness))

    @app.post("/v1/batches")
    async def write_batch(request: Request) -> JsonResponse:
        records = [to_record(event) for event in decode_batch(await request.body())["events"]]
        started = time.perf_counter()
        try:
            await sink.send(records)
        except SinkError:
            metrics.failed.inc(len(records))
            raise
        metrics.sink_latency.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(records))
        metrics.written.inc(len(records))
        return JsonResponse({"written": len(records)})

    return app
