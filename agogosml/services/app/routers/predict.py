"""`POST /predict`: records from people and curl, in MLflow's scoring bodies too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends

from agogosml.services.app import openapi
from agogosml.services.app.bodies import table_from_body
from agogosml.services.app.dataplane import DataPlane
from agogosml.services.app.routers.render import respond
from agogosml.web.bodies import read_json
from agogosml.web.responses import JsonResponse


def predict_router(plane: DataPlane, record: dict[str, Any], guards: Sequence[Depends],
                   max_body_bytes: int) -> APIRouter:
    router = APIRouter()

    @router.post("/predict", responses=openapi.ERRORS, dependencies=guards,
                 openapi_extra=openapi.operation(openapi.predict_request(record),
                                                 openapi.PREDICT_ANSWER))
    async def predict(request: Request) -> JsonResponse:
        """Score one record, a list of records, or an MLflow scoring body."""
        model = plane.models.current
        table = table_from_body(await read_json(request, max_body_bytes), model.input_columns)
        scores = await plane.score_records(model, table, "predict")
        return respond({"model": model.ref.to_json(), "predictions": scores.predictions,
                        "scores": scores.scores})

    return router
