"""`POST /v1/gdpr/forget` and `GET /v1/gdpr/forget/{request_id}` behind a bearer token.

A forget retrains a model, so it runs in the background, one at a time: the POST answers
202 with the request's id and where to follow it; the GET answers its audit record. The
same subject asked twice gets the same open request. Requests a restart interrupted are
resumed when the hosting app starts (`resume`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from agogosml.errors import NotFoundError
from agogosml.privacy.forget.audit import audit_record
from agogosml.privacy.forget.process import DAY_MS, DEADLINE_DAYS, Forgetter
from agogosml.privacy.lineage.subjects import check_subject
from agogosml.sqldb.database import now_ms
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.responses import JsonResponse

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 2**63 - 1
"""Both backends' largest integer key."""


class ForgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    subject: str


class ForgetAccepted(BaseModel):
    request_id: int
    state: str
    status_url: str


class ForgetWorker:
    """Runs forgets in a worker thread, one at a time, and keeps their tasks referenced."""

    def __init__(self, forgetter: Forgetter) -> None:
        self.forgetter = forgetter
        self._one_at_a_time = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    def _run(self, subject: str) -> None:
        with self._one_at_a_time:
            try:
                self.forgetter.forget(subject)
            except Exception:  # the journal keeps the request open; a restart resumes it
                log.exception("erasure failed; it resumes on the next request or restart")

    def submit(self, subject: str) -> None:
        task = asyncio.create_task(asyncio.to_thread(self._run, subject))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        def resume_all() -> None:
            with self._one_at_a_time:
                self.forgetter.resume_open()

        task = asyncio.create_task(asyncio.to_thread(resume_all))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


def forget_router(worker: ForgetWorker, credentials: Credentials,
                  auth_metrics: AuthMetrics) -> APIRouter:
    guard = Guard(credentials, auth_metrics, "gdpr")
    router = APIRouter(tags=["gdpr"], dependencies=[Depends(guard)])
    journal = worker.forgetter.journal

    # FastAPI's JSONResponse: its OpenAPI document then describes the body.
    @router.post("/v1/gdpr/forget", status_code=202, response_model=ForgetAccepted,
                 response_class=JSONResponse)
    async def post_forget(body: ForgetBody) -> ForgetAccepted:
        """Starts (or finds) the subject's erasure request; follow it at the status URL."""
        subject = check_subject(body.subject)
        now = now_ms()
        request = await asyncio.to_thread(journal.open_request, subject, now,
                                          now + DEADLINE_DAYS * DAY_MS)
        worker.submit(subject)
        return ForgetAccepted(request_id=request.id, state=request.state,
                              status_url=f"/v1/gdpr/forget/{request.id}")

    @router.get("/v1/gdpr/forget/{request_id}", response_class=JsonResponse)
    async def get_forget(
            request_id: Annotated[int, Path(ge=1, le=MAX_REQUEST_ID)]) -> JsonResponse:
        """The request's audit record: its steps so far, their outcomes, its deadline."""
        request = await asyncio.to_thread(journal.request, request_id)
        if request is None:
            raise NotFoundError(f"no erasure request {request_id}")
        return JsonResponse(audit_record(request))

    return router
