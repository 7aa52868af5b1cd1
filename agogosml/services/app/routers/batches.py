"""`POST /v1/batches`: the pipeline hop from the reader (and its shadow mirror)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends

from agogosml.envelope import ECHO_HEADER, SHADOW_HEADER, BatchRequest, decode_batch
from agogosml.services.app import openapi
from agogosml.services.app.dataplane import DataPlane
from agogosml.web.bodies import check_count, read_capped
from agogosml.web.responses import JsonResponse


def batches_router(plane: DataPlane, record: dict[str, Any], guards: Sequence[Depends],
                   max_body_bytes: int, max_batch_events: int) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/batches", responses=openapi.ERRORS, dependencies=guards,
                 openapi_extra=openapi.operation(openapi.batch_request(record),
                                                 openapi.BATCH_ANSWER))
    async def score_batch(request: Request) -> JsonResponse:
        """Score, hand the scored batch to the writer, and answer only after the writer
        acknowledged (else 503, and the reader retries). Records the model fails on are
        answered under `rejected`, by their index in `events`."""
        shadow = request.headers.get(SHADOW_HEADER) == "1"
        plane.writer_for(shadow)  # refuse a shadow batch this app cannot route, unread
        document = decode_batch(await read_capped(request, max_body_bytes))
        check_count(len(document["events"]), max_batch_events, "events")
        if len(document["events"]) > plane.scorer.inline_max_events:  # ~10 ms for 10,000
            batch = await asyncio.to_thread(BatchRequest.from_json, document)
        else:
            batch = BatchRequest.from_json(document)
        echo = request.headers.get(ECHO_HEADER) == "predictions"
        return JsonResponse((await plane.score_batch(batch, shadow, echo)).to_json())

    return router
