"""Open Inference Protocol v2 under `/v2` (the codec is agogosml.services.app.oip)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends

from agogosml.errors import ModelNotFoundError
from agogosml.services.app import oip, openapi
from agogosml.services.app.dataplane import DataPlane
from agogosml.services.app.model import LoadedModel
from agogosml.services.app.routers.render import respond
from agogosml.web.bodies import read_json
from agogosml.web.responses import JsonResponse


def v2_router(plane: DataPlane, ready: Callable[[], Awaitable[bool]],
              guards: Sequence[Depends], max_body_bytes: int) -> APIRouter:
    """Server health stays open like the probes; the model routes take `guards`."""
    router = APIRouter(prefix="/v2")

    def named(name: str) -> LoadedModel:
        model = plane.models.current
        if name != model.ref.name:
            raise ModelNotFoundError(f"no model named '{name}'; this app serves "
                                     f"'{model.ref.name}'")
        return model

    @router.get("/health/live")
    async def oip_live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready")
    async def oip_ready() -> JsonResponse:
        is_ready = await ready()
        return JsonResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @router.get("/models/{name}", dependencies=guards)
    async def oip_metadata(name: str) -> dict[str, Any]:
        return oip.model_metadata(named(name))

    @router.get("/models/{name}/ready", dependencies=guards)
    async def oip_model_ready(name: str) -> dict[str, Any]:
        return {"name": named(name).ref.name, "ready": True}

    @router.post("/models/{name}/infer", responses={
        **openapi.ERRORS, 404: {"description": "no model of that name"}},
        dependencies=guards,
        openapi_extra=openapi.operation(openapi.infer_request(), openapi.INFER_ANSWER))
    async def oip_infer(name: str, request: Request) -> JsonResponse:
        model = named(name)
        frame, request_id = oip.frame_from_infer_request(
            await read_json(request, max_body_bytes))
        scores = await plane.score_records(model, frame, "infer")
        return respond(oip.infer_response(model, scores, request_id))

    return router
