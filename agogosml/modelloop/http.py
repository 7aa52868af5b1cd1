"""`POST /v1/retrain {"trigger": "drift"}`: the model loop over HTTP, for the monitor.

The answer is the retrain result (200 whether or not the gate passed; `registered` says).
The hosting app installs agogosml.web.errors' handlers: a retrain already running is 503.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from agogosml.modelloop.choices import Trigger
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.web.responses import JsonResponse


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: Trigger


def retrain_router(config: LoopConfig) -> APIRouter:
    router = APIRouter()

    # A plain def: FastAPI runs it in its thread pool, so training never blocks the loop.
    @router.post("/v1/retrain", response_class=JsonResponse)
    def post_retrain(request: RetrainRequest) -> JsonResponse:
        return JsonResponse(retrain(request.trigger, config).to_dict())

    return router
