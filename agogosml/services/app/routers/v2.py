"""Open Inference Protocol v2 under `/v2` (the codec is agogosml.services.app.oip).

Every model route is served both for the model (`/v2/models/{name}`) and for its version
(`/v2/models/{name}/versions/{version}`): the app serves one version at a time, and names
it in metadata and responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.params import Depends

from agogosml.errors import ModelNotFoundError, NotReadyError
from agogosml.services.app import openapi
from agogosml.services.app.dataplane import DataPlane
from agogosml.services.app.model import LoadedModel
from agogosml.services.app.oip import codec, metadata
from agogosml.services.app.routers.render import json_bytes
from agogosml.web.bodies import read_capped
from agogosml.web.responses import JsonResponse

MODEL_PATHS = ("/models/{name}", "/models/{name}/versions/{version}")


def v2_router(plane: DataPlane, guards: Sequence[Depends], max_body_bytes: int) -> APIRouter:
    """Server health and metadata stay open like the probes; the model routes take
    `guards`. Server readiness is the model's: whether it can serve (pipeline readiness,
    the writer too, is /readyz)."""
    router = APIRouter(prefix="/v2")

    def named(name: str, version: str | None) -> LoadedModel:
        model = plane.models.current
        if name != model.ref.name:
            raise ModelNotFoundError(f"no model named '{name}'; this app serves "
                                     f"'{model.ref.name}'")
        if version is not None and version != model.ref.version:
            raise ModelNotFoundError(f"model '{name}' has no version '{version}' here; this "
                                     f"app serves version '{model.ref.version}'")
        return model

    def ready_model(name: str, version: str | None) -> LoadedModel:
        model = named(name, version)
        if model.outputs is None:
            raise NotReadyError(f"model '{name}' version '{model.ref.version}' is loaded but "
                                "failed to score its input example")
        return model

    @router.get("")
    async def oip_server_metadata() -> dict[str, Any]:
        return metadata.server_metadata()

    @router.get("/health/live")
    async def oip_live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready")
    async def oip_ready() -> JsonResponse:
        if plane.models.current.outputs is None:
            return JsonResponse({"ready": False, "error": "the model cannot score its "
                                 "input example"}, status_code=503)
        return JsonResponse({"ready": True})

    async def model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
        return metadata.model_metadata(named(name, version))

    async def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
        model = ready_model(name, version)
        return {"name": model.ref.name, "version": model.ref.version, "ready": True}

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        model = ready_model(name, version)
        infer_request = codec.read_request(await read_capped(request, max_body_bytes),
                                           request.headers.get(codec.BINARY_HEADER))
        codec.check_outputs(model, infer_request)
        codec.fit_to(model.signature, infer_request)
        scores = await plane.in_thread(
            model, infer_request.rows, "infer",
            lambda: model.score(model.frame(infer_request.columns, infer_request.rows)))
        document, binary = codec.response(model, scores, infer_request)
        header = json_bytes(document)
        if not binary:
            return Response(header, media_type="application/json")
        return Response(header + binary, media_type="application/octet-stream",
                        headers={codec.BINARY_HEADER: str(len(header))})

    for path in MODEL_PATHS:
        router.add_api_route(path, model_metadata, methods=["GET"], dependencies=guards)
        router.add_api_route(f"{path}/ready", model_ready, methods=["GET"],
                             dependencies=guards)
        router.add_api_route(
            f"{path}/infer", infer, methods=["POST"], dependencies=guards,
            responses=openapi.OIP_ERRORS,
            openapi_extra=openapi.operation(openapi.infer_request(), openapi.INFER_ANSWER))
    return router
