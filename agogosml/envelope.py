"""The event envelope that travels reader -> app -> writer, and its JSON form.

An event keeps the payload as the producer sent it, plus a stable id (so that
at-least-once delivery can be de-duplicated downstream), an optional data
subject and the event time in epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from agogosml.errors import BadRequestError

JsonObject = dict[str, Any]

SHADOW_HEADER = "x-agogosml-shadow"
"""Marks a mirrored batch on its way to a preview app: its scores go to the shadow
destination, never to production. Such a batch may carry `reference`: the production
model's prediction per event id, which the preview app compares its own with."""

ECHO_HEADER = "x-agogosml-echo"
"""`predictions`: the app's answer to a batch includes its prediction per event id."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    time_ms: int
    payload: JsonObject
    subject: str | None = None

    def to_json(self) -> JsonObject:
        return {"id": self.id, "subject": self.subject, "time": self.time_ms,
                "payload": self.payload}

    @classmethod
    def from_json(cls, item: Any) -> Event:
        if not isinstance(item, dict):
            raise BadRequestError("each event must be a JSON object")
        try:
            event_id, time_ms, payload = item["id"], item["time"], item["payload"]
        except KeyError as missing:
            raise BadRequestError(f"event is missing the field {missing}") from None
        if not isinstance(event_id, str) or not isinstance(payload, dict):
            raise BadRequestError("event 'id' must be a string and 'payload' an object")
        if not isinstance(time_ms, int):
            raise BadRequestError("event 'time' must be an integer (epoch milliseconds)")
        subject = item.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise BadRequestError("event 'subject' must be a string or null")
        return cls(id=event_id, time_ms=time_ms, payload=payload, subject=subject)


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: str

    def to_json(self) -> JsonObject:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    id: str
    time_ms: int
    subject: str | None
    model: ModelRef
    prediction: Any
    scores: Mapping[str, float] = field(default_factory=dict)
    scored_at_ms: int = 0

    def to_json(self) -> JsonObject:
        return {"id": self.id, "subject": self.subject, "time": self.time_ms,
                "model": self.model.to_json(), "prediction": self.prediction,
                "scores": dict(self.scores), "scored_at": self.scored_at_ms}


def dumps(value: Any) -> bytes:
    """Encode to JSON bytes; numpy scalars and arrays are accepted as they are."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def decode_batch(body: bytes) -> dict[str, Any]:
    """Read a batch body `{"events": [...], ...}`, or explain what is wrong with it."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BadRequestError("body must be an object with a list under 'events'")
    return document
