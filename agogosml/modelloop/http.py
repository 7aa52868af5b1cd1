"""`POST /v1/retrain {"trigger": "drift"}`: the model loop over HTTP, for the monitor.

Retraining moves the challenger alias, so the route always takes a bearer token
(AGOGOSML_RETRAIN_TOKEN; AGOGOSML_RETRAIN_TOKEN_SECONDARY is accepted too, for rotation).

The answer is the retrain result (200 whether or not the gate passed; `registered` says).
The hosting app installs agogosml.web.errors' handlers: a retrain already running is 503.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, SettingsConfigDict

from agogosml.modelloop.choices import Trigger
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.web.auth import AuthMetrics, Credentials, Guard, OptionalToken, Token
from agogosml.web.responses import JsonResponse


class RetrainServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_RETRAIN_", extra="ignore")

    token: Token
    token_secondary: OptionalToken = None

    def credentials(self) -> Credentials:
        return Credentials(self.token, self.token_secondary)


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: Trigger


def retrain_router(config: LoopConfig, credentials: Credentials,
                   registry: CollectorRegistry) -> APIRouter:
    guard = Guard(credentials, AuthMetrics(registry), "retrain")
    router = APIRouter(dependencies=[Depends(guard)])

    # A plain def: FastAPI runs it in its thread pool, so training never blocks the loop.
    @router.post("/v1/retrain", response_class=JsonResponse)
    def post_retrain(request: RetrainRequest) -> JsonResponse:
        return JsonResponse(retrain(request.trigger, config).to_dict())

    return router
