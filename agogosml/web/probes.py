"""Liveness, readiness and Prometheus metrics routes, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agogosml.web.responses import JsonResponse

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
"""Returns each dependency's name and whether it is usable now."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a service is not ready, or no longer alive: a short reason and a detail."""

    reason: str
    detail: str


ProblemCheck = Callable[[], Problem | None]
"""Returns None while all is well, else the problem. Runs on the event loop: keep it cheap."""


def _no_problem() -> Problem | None:
    return None


def probe_router(registry: CollectorRegistry, readiness: ReadinessCheck,
                 liveness: ProblemCheck = _no_problem,
                 progress: ProblemCheck = _no_problem) -> APIRouter:
    """`liveness` failing makes /healthz answer 503, so Kubernetes restarts the pod;
    `progress` failing makes /readyz answer 503 even when every dependency is up."""
    router = APIRouter(tags=["probes"])

    @router.get("/healthz")
    async def healthz() -> JsonResponse:
        problem = liveness()
        if problem is not None:
            return JsonResponse({"status": "failing", "reason": problem.reason,
                                 "detail": problem.detail}, status_code=503)
        return JsonResponse({"status": "alive"})

    @router.get("/readyz")
    async def readyz() -> JsonResponse:
        checks = await readiness()
        problem = progress()
        body: dict[str, object] = {"ready": all(checks.values()) and problem is None,
                                   "checks": checks}
        if problem is not None:
            body.update(reason=problem.reason, detail=problem.detail)
        return JsonResponse(body, status_code=200 if body["ready"] else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
