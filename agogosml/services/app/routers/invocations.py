"""MLflow's scoring server routes: `POST /invocations`, `GET /ping`, `/health`, `/version`,
answering as `mlflow models serve` does, so that MLflow's clients work unchanged (the
codec is agogosml.services.app.mlflow_scoring)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.params import Depends
from mlflow.version import VERSION as MLFLOW_VERSION

from agogosml.errors import ModelInputError, NotReadyError
from agogosml.services.app import mlflow_scoring, openapi
from agogosml.services.app.dataplane import DataPlane
from agogosml.services.app.model import LoadedModel
from agogosml.web.bodies import read_capped

PREFIXES = ("/invocations", "/ping", "/health", "/version")
"""The paths whose errors take MLflow's shape."""


def invocations_router(plane: DataPlane, record: dict[str, Any], guards: Sequence[Depends],
                       max_body_bytes: int) -> APIRouter:
    router = APIRouter(tags=["mlflow"])

    async def ping() -> Response:
        """MLflow's health check: 200 while the model can serve."""
        if plane.models.current.outputs is None:
            raise NotReadyError("the model cannot score its input example")
        return Response("\n", media_type="application/json")

    router.add_api_route("/ping", ping, methods=["GET"])
    router.add_api_route("/health", ping, methods=["GET"])

    @router.get("/version")
    async def version() -> Response:
        """The MLflow version the model is served with, as MLflow's server says it."""
        return Response(MLFLOW_VERSION, media_type="application/json")

    @router.post("/invocations", dependencies=guards, responses=openapi.MLFLOW_ERRORS,
                 openapi_extra=openapi.invocations_operation(record))
    async def invocations(request: Request) -> Response:
        """Score a body in any of MLflow's forms: JSON dataframe_split, dataframe_records,
        instances or inputs (with optional params), or CSV."""
        model = plane.models.current
        body = await read_capped(request, max_body_bytes)
        schema = model.pyfunc.metadata.get_input_schema()
        invocation = await asyncio.to_thread(
            mlflow_scoring.parse, body, request.headers.get("content-type"), schema)
        answer = await plane.in_thread(model, invocation.rows, "invocations",
                                       lambda: _predict(model, invocation, schema))
        return Response(answer, media_type="application/json")

    return router


def _predict(model: LoadedModel, invocation: mlflow_scoring.Invocation, schema: Any) -> bytes:
    try:
        output = model.predict(invocation.data, invocation.params)
    except ModelInputError as error:
        explained = mlflow_scoring.explain_failure(invocation.data, schema)
        raise (error if explained is None else ModelInputError(explained)) from None
    return mlflow_scoring.predictions(output)
