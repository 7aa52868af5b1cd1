"""The output writer's HTTP API: POST /v1/batches writes a scored batch to the sink.

Each event becomes one record keyed by its id, so consumers (and Kafka's log
compaction, if enabled) can drop the duplicates at-least-once delivery allows.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from prometheus_client import CollectorRegistry

from agogosml.envelope import (
    SCORED_EVENT_SCHEMA,
    ScoredEvent,
    decode_batch,
    dumps,
)
from agogosml.errors import BadRequestError, SinkError
from agogosml.services.output_writer.metrics import WriterMetrics
from agogosml.streaming.base import OutRecord, Sink
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.bodies import (
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_BODY_BYTES,
    check_count,
    read_capped,
)
from agogosml.web.errors import ERROR_SCHEMA, install_error_handlers
from agogosml.web.probes import probe_router
from agogosml.web.responses import JsonResponse

ERROR: dict[str, Any] = {"application/json": {"schema": ERROR_SCHEMA}}

WRITE_OPERATION: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["events"],
        "properties": {"events": {"type": "array", "items": SCORED_EVENT_SCHEMA}}}}}},
    "responses": {
        "200": {"description": "the sink confirmed every record", "content": {
            "application/json": {"schema": {"type": "object", "required": ["written"],
                                            "properties": {"written": {"type": "integer"}}}}}},
        "400": {"description": "a malformed batch, or a record the sink never takes",
                "content": ERROR},
        "401": {"description": "no accepted pipeline token", "content": ERROR},
        "413": {"description": "too many bytes or events", "content": ERROR},
        "503": {"description": "the sink did not confirm; retry", "content": ERROR},
    },
}


def to_record(index: int, item: Any) -> OutRecord:
    """The record as the documented shape only: fields the writer does not know are dropped."""
    try:
        event = ScoredEvent.canonical(item)
    except BadRequestError as error:
        raise BadRequestError(f"events[{index}]: {error}") from None
    return OutRecord(value=dumps(event), key=event["id"].encode())


def create_app(sink: Sink, registry: CollectorRegistry, pipeline: Credentials,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS) -> FastAPI:
    """Only the app writes: `/v1/batches` takes only the `pipeline` tokens."""
    metrics = WriterMetrics(registry)
    guard = Guard(pipeline, AuthMetrics(registry), "pipeline")

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

    @app.post("/v1/batches", openapi_extra=WRITE_OPERATION, dependencies=[Depends(guard)])
    async def write_batch(request: Request) -> JsonResponse:
        events = decode_batch(await read_capped(request, max_body_bytes))["events"]
        check_count(len(events), max_batch_events, "events")
        records = [to_record(index, item) for index, item in enumerate(events)]
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
