"""The one place where agogosml's exceptions become HTTP statuses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from agogosml.errors import (
    AgogosmlError,
    BadRequestError,
    BatchFailedError,
    DownstreamError,
    ModelInputError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from agogosml.web.responses import JsonResponse

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[AgogosmlError], int], ...] = (
    (UnauthorizedError, 401),
    (PayloadTooLargeError, 413),
    (ModelInputError, 422),
    (BadRequestError, 400),
    (NotFoundError, 404),
    (NotReadyError, 503),
    # The next hop failed on this batch (not an outage): the caller may isolate records.
    (BatchFailedError, 500),
    (DownstreamError, 503),
)


def status_for(error: AgogosmlError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


async def _agogosml_error(request: Request, error: Exception) -> JsonResponse:
    assert isinstance(error, AgogosmlError)
    status = status_for(error)
    if status >= 500:
        log.warning("request failed", extra={"path": request.url.path, "status": status,
                                             "error": type(error).__name__})
    headers = ({"www-authenticate": f'Bearer realm="{error.realm}"'}
               if isinstance(error, UnauthorizedError) else None)
    return JsonResponse({"error": type(error).__name__, "detail": str(error)}, status_code=status,
                        headers=headers)


async def _validation_error(request: Request, error: Exception) -> JsonResponse:
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )
    return JsonResponse({"error": "BadRequestError", "detail": problems}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AgogosmlError, _agogosml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
