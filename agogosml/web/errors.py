"""The one place where agogosml's exceptions become HTTP statuses and error bodies.

Every 4xx and 5xx, including a path no route serves and a method a path does not take,
is answered in the error style of the routes it was sent to: agogosml's own
(`{"error": message, "type": class}`, which is also the Open Inference Protocol's shape),
or MLflow's scoring server's (`{"error_code": ..., "message": ...}`) on the routes that
stand in for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from agogosml.errors import (
    AgogosmlError,
    BadRequestError,
    BatchFailedError,
    DownstreamError,
    InternalError,
    MethodNotAllowedError,
    ModelInputError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from agogosml.web.responses import JsonResponse

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[AgogosmlError], int], ...] = (
    (UnauthorizedError, 401),
    (PayloadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (MethodNotAllowedError, 405),
    (ModelInputError, 422),
    (BadRequestError, 400),
    (NotFoundError, 404),
    (NotReadyError, 503),
    # The next hop failed on this batch (not an outage): the caller may isolate records.
    (BatchFailedError, 500),
    (DownstreamError, 503),
)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error", "type"],
    "properties": {"error": {"type": "string", "description": "what is wrong, for a person"},
                   "type": {"type": "string", "description": "the error's class"}}}
"""agogosml's error body, as OpenAPI documents declare it."""


MLFLOW_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}}
"""MLflow's scoring server's error body, on the routes that stand in for it."""


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    """How one family of routes writes its errors."""

    body: Callable[[int, AgogosmlError], dict[str, Any]]
    input_status: int = 422
    """The status of records the model refuses (ModelInputError)."""


def _agogosml_body(_: int, error: AgogosmlError) -> dict[str, Any]:
    return {"error": str(error), "type": type(error).__name__}


MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "ENDPOINT_NOT_FOUND",
                405: "ENDPOINT_NOT_FOUND", 413: "REQUEST_LIMIT_EXCEEDED", 415: "BAD_REQUEST",
                500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}


def _mlflow_body(status: int, error: AgogosmlError) -> dict[str, Any]:
    return {"error_code": MLFLOW_CODES.get(status, "BAD_REQUEST"), "message": str(error)}


AGOGOSML_STYLE = ErrorStyle(_agogosml_body)
OIP_STYLE = ErrorStyle(_agogosml_body, input_status=400)
"""KServe and Triton answer 400 to inputs a model cannot take."""
MLFLOW_STYLE = ErrorStyle(_mlflow_body, input_status=400)
"""As `mlflow models serve` answers, which sends 400 for any input problem."""


def status_for(error: AgogosmlError, style: ErrorStyle = AGOGOSML_STYLE) -> int:
    if isinstance(error, ModelInputError):
        return style.input_status
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def install_error_handlers(app: FastAPI,
                           styles: Sequence[tuple[str, ErrorStyle]] = ()) -> None:
    """`styles` pairs a path prefix with the style of errors below it; the first match
    wins, and other paths get agogosml's own."""

    def style_of(request: Request) -> ErrorStyle:
        path = request.url.path
        for prefix, style in styles:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return style
        return AGOGOSML_STYLE

    def render(request: Request, error: AgogosmlError, status: int | None = None,
               headers: dict[str, str] | None = None) -> JsonResponse:
        style = style_of(request)
        status = status or status_for(error, style)
        if status >= 500:
            log.warning("request failed", extra={"path": request.url.path, "status": status,
                                                 "error": type(error).__name__})
        return JsonResponse(style.body(status, error), status_code=status, headers=headers)

    async def agogosml_error(request: Request, error: Exception) -> JsonResponse:
        assert isinstance(error, AgogosmlError)
        headers = None
        if isinstance(error, UnauthorizedError):
            headers = {"www-authenticate": f'Bearer realm="{error.realm}"'}
        elif isinstance(error, MethodNotAllowedError):
            headers = {"allow": error.allowed}
        return render(request, error, headers=headers)

    async def validation_error(request: Request, error: Exception) -> JsonResponse:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                             for item in error.errors())
        return render(request, BadRequestError(problems), status=422)

    async def http_error(request: Request, error: Exception) -> JsonResponse:
        """Starlette's own refusals: no route for the path, or not for this method."""
        assert isinstance(error, HTTPException)
        where = f"{request.method} {request.url.path}"
        if error.status_code == 404:
            return render(request, NotFoundError(f"no route for {where}"), 404)
        if error.status_code == 405:
            allowed = next((value for key, value in (error.headers or {}).items()
                            if key.lower() == "allow"), "")
            return await agogosml_error(request, MethodNotAllowedError(
                f"{request.method} is not allowed on {request.url.path}; it takes {allowed}",
                allowed))
        return render(request, BadRequestError(f"{where}: {error.detail}"),
                      error.status_code, dict(error.headers or {}))

    async def unexpected_error(request: Request, error: Exception) -> JsonResponse:
        return render(request, InternalError(f"internal error ({type(error).__name__})"), 500)

    app.add_exception_handler(AgogosmlError, agogosml_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
