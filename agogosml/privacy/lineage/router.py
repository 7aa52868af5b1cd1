"""`GET /v1/gdpr/lineage/{subject}` behind a bearer token."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from agogosml.privacy.lineage.cli import lineage_report
from agogosml.privacy.lineage.index import LineageIndex
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.responses import JsonResponse


def lineage_router(index: LineageIndex, credentials: Credentials,
                   auth_metrics: AuthMetrics) -> APIRouter:
    """The hosting app installs agogosml.web.errors' handlers: 401 without an accepted
    token, 400 for a subject no backend can hold."""
    guard = Guard(credentials, auth_metrics, "gdpr")
    router = APIRouter(tags=["gdpr"], dependencies=[Depends(guard)])

    # `:path`: a pseudonym may hold slashes (sent percent-encoded or not).
    @router.get("/v1/gdpr/lineage/{subject:path}", response_class=JsonResponse)
    async def get_lineage(subject: str) -> JsonResponse:
        """The registered model versions and training runs that used the subject."""
        return JsonResponse(await asyncio.to_thread(lineage_report, index, subject))

    return router
