"""Rendering an answer that holds model output."""

from __future__ import annotations

from typing import Any

import orjson

from agogosml.errors import ModelInputError
from agogosml.web.responses import JsonResponse


def respond(content: dict[str, Any]) -> JsonResponse:
    """The response is rendered here, so that a model output JSON cannot hold (nesting
    beyond orjson's 254 levels, integers beyond 64 bits) is a refusal, not a 500."""
    try:
        return JsonResponse(content)
    except TypeError as error:  # orjson.JSONEncodeError
        raise ModelInputError(f"model output cannot be written as JSON: {error}") from None


def json_bytes(content: Any) -> bytes:
    """`content` as JSON, under the same rule as `respond`."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as error:
        raise ModelInputError(f"model output cannot be written as JSON: {error}") from None
