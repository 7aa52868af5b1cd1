"""The app's HTTP API: /predict for curl, /v1/batches for the pipeline, OIP v2 under /v2,
and MLflow's scoring server routes (/invocations, /ping, /health, /version).

`create_app` wires the data plane (dataplane.py) to the routers (routers/), the probes,
authentication and the request counter the rollout gate reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agogosml.services.app import SCORING_ROUTES, openapi
from agogosml.services.app.dataplane import DataPlane
from agogosml.services.app.metrics import AppMetrics
from agogosml.services.app.reload import ModelHolder, ModelWatcher
from agogosml.services.app.routers.batches import batches_router
from agogosml.services.app.routers.invocations import PREFIXES as MLFLOW_PREFIXES
from agogosml.services.app.routers.invocations import invocations_router
from agogosml.services.app.routers.predict import predict_router
from agogosml.services.app.routers.v2 import v2_router
from agogosml.services.app.scoring import Scorer
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.bodies import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_BODY_BYTES
from agogosml.web.client import BatchClient
from agogosml.web.errors import MLFLOW_STYLE, OIP_STYLE, install_error_handlers
from agogosml.web.probes import probe_router
from agogosml.web.responses import JsonResponse


def create_app(models: ModelHolder, writer: BatchClient, registry: CollectorRegistry,
               writer_health_url: str, pipeline: Credentials,
               api_keys: Credentials | None = None, max_predict_records: int = 10_000,
               model_uri: str | None = None, reload_interval_s: float = 0.0,
               shadow_writer: BatchClient | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
               scorer: Scorer | None = None) -> FastAPI:
    """`model_uri` with an alias and a positive `reload_interval_s` make the app follow
    the alias and hot-swap new versions.

    `/v1/batches` takes only the `pipeline` tokens (from the reader). With `api_keys`,
    `/predict`, `/invocations` and the OIP model routes take only those; without, they
    are open."""
    metrics = AppMetrics(registry)
    plane = DataPlane(models, writer, metrics, shadow_writer, scorer, max_predict_records)
    watcher = ModelWatcher(models, model_uri or "", reload_interval_s, plane.swapped)
    auth_metrics = AuthMetrics(registry)
    from_pipeline = [Depends(Guard(pipeline, auth_metrics, "pipeline"))]
    from_clients = ([] if api_keys is None
                    else [Depends(Guard(api_keys, auth_metrics, "api-key"))])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await plane.close()

    async def readiness() -> dict[str, bool]:
        return {"model": models.current.outputs is not None,
                "writer": await plane.writer_reachable(writer_health_url)}

    app = FastAPI(title="agogosml app", lifespan=lifespan, default_response_class=JsonResponse)
    install_error_handlers(app, [("/v2", OIP_STYLE),
                                 *((prefix, MLFLOW_STYLE) for prefix in MLFLOW_PREFIXES)])

    app.add_middleware(ScoringRequestCounter, metrics=metrics)

    # Documents the model loaded at start; a hot swap to other columns leaves it behind.
    record = openapi.record_schema(models.current.signature)
    app.include_router(probe_router(registry, readiness))
    app.include_router(predict_router(plane, record, from_clients, max_body_bytes))
    app.include_router(batches_router(plane, record, from_pipeline, max_body_bytes,
                                      max_batch_events))
    app.include_router(v2_router(plane, from_clients, max_body_bytes))
    app.include_router(invocations_router(plane, record, from_clients, max_body_bytes))
    return app


class ScoringRequestCounter:
    """Counts scoring requests by route and status (agogosml_app_requests_total), which
    the rollout gate judges a slot by. Refused credentials are counted apart
    (agogosml_auth_refused_total), and an unhandled error counts as the 500 it becomes.

    Plain ASGI rather than `@app.middleware("http")`, whose machinery (a task and a
    memory stream per request) cost ~16% of the app's CPU per pipeline request."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router notes the matched route in the scope it was handed, this one.
            endpoint = getattr(scope.get("route"), "path", None)
            if endpoint in SCORING_ROUTES and status != 401:
                self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
