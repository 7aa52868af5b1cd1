"""Reading request bodies with a size cap, before anything parses them.

A declared Content-Length above the cap is refused at once; a body without one (chunked)
is read as a stream that stops as soon as it passes the cap, so an oversized request
never sits in memory whole.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from agogosml.errors import BadRequestError, PayloadTooLargeError

MIB = 1024 * 1024

DEFAULT_MAX_BODY_BYTES = 64 * MIB
"""Room for the reader's default batch (500 events) at ~130 KiB per event, or its largest
(batch_max_size 10,000) at ~6.5 KiB per event; typical events are well under 1 KiB. The
reader's own bound, 10,000 events of up to 256 KiB (2.5 GiB), is one no process should
hold in memory, so it is not the measure. Parsing a body near the cap takes ~0.1-3 s
(large strings to many small values), during which the event loop is not free."""

DEFAULT_MAX_BATCH_EVENTS = 10_000
"""The reader's largest batch_max_size."""


async def read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"the body is {declared} bytes; this service accepts at "
                                   f"most {max_bytes} bytes per request")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"the body is larger than {max_bytes} bytes, the most "
                                       "this service accepts per request")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body as JSON, or a BadRequestError that says why it is not."""
    body = await read_capped(request, max_bytes)
    if not body:
        raise BadRequestError("the body is empty; send JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from None


def check_count(count: int, max_count: int, what: str) -> None:
    if count > max_count:
        raise PayloadTooLargeError(f"{count} {what} in one request; at most {max_count} "
                                   "are accepted")
