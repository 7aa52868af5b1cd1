"""The API's query parameters checked before the store sees them: a hostile value becomes
a BadRequestError (400) that says what is wrong, never a store error (500)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agogosml.errors import BadRequestError
from agogosml.monitor.store.base import Json, dumps

MAX_TIME_MS = 2**53 - 1
"""The largest time JavaScript (and JSON readers in general) hold exactly."""
MAX_WINDOWS = 10_000
"""The most windows one /api/counts request may ask for."""
MAX_EVENTS_PER_PAGE = 500
MAX_FIRINGS = 500
MAX_TEXT = 1_000
"""The longest model version, prediction or cursor accepted, in characters."""


@dataclass(frozen=True)
class TimeRange:
    """Half-open, [start_ms, end_ms)."""

    start_ms: int
    end_ms: int

    @classmethod
    def of(cls, start_ms: int, end_ms: int) -> TimeRange:
        if end_ms <= start_ms:
            raise BadRequestError(f"end ({end_ms}) must be after start ({start_ms})")
        return cls(start_ms, end_ms)

    def windows(self, window_ms: int) -> int:
        """How many aligned windows of `window_ms` the range touches."""
        return (self.end_ms - 1) // window_ms - self.start_ms // window_ms + 1


def check_windows(time_range: TimeRange, window_ms: int) -> None:
    count = time_range.windows(window_ms)
    if count > MAX_WINDOWS:
        raise BadRequestError(f"{count} windows of {window_ms} ms in the range; at most "
                              f"{MAX_WINDOWS} per request: ask for a wider window")


def text(value: str | None, name: str) -> str | None:
    """A text filter as given; PostgreSQL text cannot hold NUL, so that is refused here
    rather than failing in the store."""
    if value is not None and "\x00" in value:
        raise BadRequestError(f"{name} holds a NUL character")
    return value


def _contains_nul(value: Json) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    return False


def prediction(text: str | None) -> Json:
    """The prediction filter: a JSON value (`"fraud"`, `1`, `true`); None for no filter."""
    if text is None:
        return None
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"prediction must be a JSON value (quote strings: \"fraud\"): "
                              f"{error}") from None
    if value is None:
        raise BadRequestError("prediction null is not a filter; leave prediction out to "
                              "list every prediction")
    if _contains_nul(value):
        raise BadRequestError("prediction holds a NUL character")
    return value


def cursor(text: str | None) -> str | None:
    """A cursor as /api/events returned it: [event time ms, event id, model version]."""
    if text is None:
        return None
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not (isinstance(value, list) and len(value) == 3
            and isinstance(value[0], int) and not isinstance(value[0], bool)
            and 0 <= value[0] <= MAX_TIME_MS
            and isinstance(value[1], str) and isinstance(value[2], str)
            and not _contains_nul(value)):
        raise BadRequestError("cursor is not one that /api/events returned")
    return dumps(value)
