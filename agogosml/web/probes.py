"""Liveness, readiness and Prometheus metrics routes, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agogosml.web.responses import JsonResponse

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
"""Returns each dependency's name and whether it is usable now."""


def probe_router(registry: CollectorRegistry, readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JsonResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JsonResponse({"ready": ready, "checks": checks},
                              status_code=200 if ready else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
