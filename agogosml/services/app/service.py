"""The app's HTTP API: /predict for curl, /v1/batches for the pipeline, OIP v2 under /v2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry

from agogosml.envelope import (
    ECHO_HEADER,
    SHADOW_HEADER,
    BatchAnswer,
    BatchRequest,
    ScoredBatch,
    ScoredEvent,
    decode_batch,
)
from agogosml.errors import BadRequestError, ModelInputError, ModelNotFoundError
from agogosml.services.app import oip, openapi
from agogosml.services.app.bodies import frame_from_body
from agogosml.services.app.metrics import AppMetrics
from agogosml.services.app.model import LoadedModel, Scores
from agogosml.services.app.reload import ModelHolder, ModelWatcher
from agogosml.services.app.scoring import Scorer
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.bodies import (
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_BODY_BYTES,
    check_count,
    read_capped,
    read_json,
)
from agogosml.web.client import BatchClient
from agogosml.web.errors import install_error_handlers
from agogosml.web.probes import probe_router
from agogosml.web.responses import JsonResponse

SCORING_ROUTES = frozenset({"/v1/batches", "/predict", "/v2/models/{name}/infer"})
"""The requests agogosml_app_requests_total counts: what the rollout gate judges a slot on."""


def create_app(models: ModelHolder, writer: BatchClient, registry: CollectorRegistry,
               writer_health_url: str, pipeline: Credentials,
               api_keys: Credentials | None = None, max_predict_records: int = 10_000,
               model_uri: str | None = None, reload_interval_s: float = 0.0,
               shadow_writer: BatchClient | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
               scorer: Scorer | None = None) -> FastAPI:
    """`model_uri` with an alias and a positive `reload_interval_s` make the app follow
    the alias and hot-swap new versions. Batches marked as shadow traffic go to
    `shadow_writer`, never to `writer`, so either colour can serve either role and a
    blue/green switch is only a change of Service selectors.

    `/v1/batches` takes only the `pipeline` tokens (from the reader). With `api_keys`,
    `/predict` and the OIP model routes take only those; without, they are open."""
    metrics = AppMetrics(registry)
    auth_metrics = AuthMetrics(registry)
    from_pipeline = [Depends(Guard(pipeline, auth_metrics, "pipeline"))]
    from_clients = ([] if api_keys is None
                    else [Depends(Guard(api_keys, auth_metrics, "api-key"))])
    batch_scorer = scorer or Scorer()
    metrics.model_info.labels(model=models.current.ref.name,
                              version=models.current.ref.version).set(1)

    def swapped(old: LoadedModel, fresh: LoadedModel) -> None:
        metrics.model_info.labels(model=old.ref.name, version=old.ref.version).set(0)
        metrics.model_info.labels(model=fresh.ref.name, version=fresh.ref.version).set(1)

    watcher = ModelWatcher(models, model_uri or "", reload_interval_s, swapped)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await writer.aclose()
            if shadow_writer is not None:
                await shadow_writer.aclose()

    async def readiness() -> dict[str, bool]:
        return {"model": models.current is not None,
                "writer": await writer.is_reachable(writer_health_url)}

    app = FastAPI(title="agogosml app", lifespan=lifespan, default_response_class=JsonResponse)
    install_error_handlers(app)

    @app.middleware("http")
    async def count_requests(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Scoring requests only, by status; refused credentials are counted apart
        (agogosml_auth_refused_total), and an unhandled error counts as the 500 it becomes."""
        try:
            response = await call_next(request)
        except Exception:
            _count_scoring(request, 500, metrics)
            raise
        if response.status_code != 401:
            _count_scoring(request, response.status_code, metrics)
        return response

    app.include_router(probe_router(registry, readiness))

    async def score_request(model: LoadedModel, frame: pd.DataFrame, endpoint: str) -> Scores:
        """Requests from people and OIP clients may hold up to max_predict_records rows, so
        they are scored in a worker thread and probes stay answered meanwhile (pipeline
        batches: see scoring.Scorer)."""
        check_count(len(frame), max_predict_records, "records")
        started = time.perf_counter()
        scores = await asyncio.to_thread(lambda: model.score(model.select(frame)))
        metrics.predict_latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        metrics.scored.labels(endpoint=endpoint, model=model.ref.name,
                              version=model.ref.version).inc(len(frame))
        return scores

    # Documents the model loaded at start; a hot swap to other columns leaves it behind.
    record = openapi.record_schema(models.current.input_columns, models.current.input_types)

    @app.post("/predict", responses=openapi.ERRORS, dependencies=from_clients,
              openapi_extra=openapi.operation(openapi.predict_request(record),
                                              openapi.PREDICT_ANSWER))
    async def predict(request: Request) -> JsonResponse:
        """Score one record, a list of records, or an MLflow scoring body."""
        model = models.current
        frame = frame_from_body(await read_json(request, max_body_bytes), model.input_columns)
        scores = await score_request(model, frame, "predict")
        return _respond({"model": model.ref.to_json(), "predictions": scores.predictions,
                         "scores": scores.scores})

    @app.post("/v1/batches", responses=openapi.ERRORS, dependencies=from_pipeline,
              openapi_extra=openapi.operation(openapi.batch_request(record),
                                              openapi.BATCH_ANSWER))
    async def score_batch(request: Request) -> JsonResponse:
        """The pipeline hop: score, hand the scored batch to the writer, and answer only
        after the writer acknowledged (else 503, and the reader retries). Records the
        model fails on are answered under `rejected`, by their index in `events`."""
        model = models.current
        destination = writer
        if request.headers.get(SHADOW_HEADER) == "1":
            if shadow_writer is None:
                raise BadRequestError("shadow batch refused: this app has no shadow writer "
                                      "(AGOGOSML_APP_SHADOW_WRITER_URL)")
            destination = shadow_writer
        document = decode_batch(await read_capped(request, max_body_bytes))
        check_count(len(document["events"]), max_batch_events, "events")
        if len(document["events"]) > batch_scorer.inline_max_events:  # ~10 ms for 10,000
            batch = await asyncio.to_thread(BatchRequest.from_json, document)
        else:
            batch = BatchRequest.from_json(document)
        events = batch.events
        started = time.perf_counter()
        result = await batch_scorer.score(model, events)
        metrics.predict_latency.labels(endpoint="batch").observe(time.perf_counter() - started)
        metrics.batch_size.labels(endpoint="batch").observe(len(events))
        if result.scored:
            forwarded = time.perf_counter()
            await destination.post(ScoredBatch(result.scored).to_json())
            metrics.forward_latency.observe(time.perf_counter() - forwarded)
        metrics.scored.labels(endpoint="batch", model=model.ref.name,
                              version=model.ref.version).inc(len(result.scored))
        metrics.rejected.labels(endpoint="batch").inc(len(result.rejected))
        metrics.count_predictions(model.ref, [event.prediction for event in result.scored])
        if destination is shadow_writer:
            _compare_with_production(result.scored, batch.reference, metrics)
        echo = request.headers.get(ECHO_HEADER) == "predictions"
        return JsonResponse(BatchAnswer(
            len(result.scored), result.rejected,
            {event.id: event.prediction for event in result.scored} if echo else None,
        ).to_json())

    @app.get("/v2/health/live")
    async def oip_live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def oip_ready() -> JsonResponse:
        ready = all((await readiness()).values())
        return JsonResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/v2/models/{name}", dependencies=from_clients)
    async def oip_metadata(name: str) -> dict[str, Any]:
        return oip.model_metadata(_named(models, name))

    @app.get("/v2/models/{name}/ready", dependencies=from_clients)
    async def oip_model_ready(name: str) -> dict[str, Any]:
        return {"name": _named(models, name).ref.name, "ready": True}

    @app.post("/v2/models/{name}/infer", responses={
        **openapi.ERRORS, 404: {"description": "no model of that name"}},
        dependencies=from_clients,
        openapi_extra=openapi.operation(openapi.infer_request(), openapi.INFER_ANSWER))
    async def oip_infer(name: str, request: Request) -> JsonResponse:
        model = _named(models, name)
        frame, request_id = oip.frame_from_infer_request(
            await read_json(request, max_body_bytes))
        scores = await score_request(model, frame, "infer")
        return _respond(oip.infer_response(model, scores, request_id))

    return app


def _count_scoring(request: Request, status: int, metrics: AppMetrics) -> None:
    endpoint = getattr(request.scope.get("route"), "path", None)
    if endpoint in SCORING_ROUTES:
        metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()


def _compare_with_production(scored: list[ScoredEvent], reference: dict[str, Any] | None,
                             metrics: AppMetrics) -> None:
    if reference is None:
        return
    compared = [event for event in scored if event.id in reference]
    metrics.shadow_compared.inc(len(compared))
    metrics.shadow_agreed.inc(sum(event.prediction == reference[event.id] for event in compared))


def _named(models: ModelHolder, name: str) -> LoadedModel:
    model = models.current
    if name != model.ref.name:
        raise ModelNotFoundError(f"no model named '{name}'; this app serves '{model.ref.name}'")
    return model


def _respond(content: dict[str, Any]) -> JsonResponse:
    """The response is rendered here, so that a model output JSON cannot hold (nesting
    beyond orjson's 254 levels, integers beyond 64 bits) is a refusal, not a 500."""
    try:
        return JsonResponse(content)
    except TypeError as error:  # orjson.JSONEncodeError
        raise ModelInputError(f"model output cannot be written as JSON: {error}") from None
