"""The event envelope that travels reader -> app -> writer, and its JSON form.

An event keeps the payload as the producer sent it, plus a stable id (so that
at-least-once delivery can be de-duplicated downstream), an optional data
subject and the event time in epoch milliseconds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from agogosml.errors import BadRequestError

JsonObject = dict[str, Any]

SHADOW_HEADER = "x-agogosml-shadow"
"""Marks a mirrored batch on its way to a preview app: its scores go to the shadow
destination, never to production. Such a batch may carry `reference`: the production
model's prediction per event id, which the preview app compares its own with."""

ECHO_HEADER = "x-agogosml-echo"
"""`predictions`: the app's answer to a batch includes its prediction per event id."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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
        if not _is_int64(time_ms):
            raise BadRequestError("event 'time' must be a 64-bit integer (epoch milliseconds)")
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
    features: Mapping[str, Any] | None = None
    """The model's input columns with the values it was given; None only for a scored
    event from a producer older than features, which is written without them."""

    def to_json(self) -> JsonObject:
        document = {"id": self.id, "subject": self.subject, "time": self.time_ms,
                    "model": self.model.to_json(), "prediction": self.prediction,
                    "scores": dict(self.scores), "scored_at": self.scored_at_ms}
        if self.features is not None:
            document["features"] = dict(self.features)
        return document

    @classmethod
    def from_json(cls, item: Any) -> ScoredEvent:
        """The writer's view of the app's output: every field checked, so that what goes
        to the sink is exactly the documented shape."""
        if not isinstance(item, dict):
            raise BadRequestError("a scored event must be a JSON object")
        try:
            event_id, time_ms, model = item["id"], item["time"], item["model"]
            prediction, scores, scored_at = item["prediction"], item["scores"], item["scored_at"]
        except KeyError as missing:
            raise BadRequestError(f"scored event is missing the field {missing}") from None
        subject = item.get("subject")
        if not isinstance(event_id, str) or not event_id:
            raise BadRequestError("'id' must be a non-empty string")
        if not _is_int64(time_ms) or not _is_int64(scored_at):
            raise BadRequestError("'time' and 'scored_at' must be 64-bit integers")
        if subject is not None and not isinstance(subject, str):
            raise BadRequestError("'subject' must be a string or null")
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) \
                or not isinstance(model.get("version"), str):
            raise BadRequestError("'model' must be an object with string 'name' and 'version'")
        problem = output_problem(prediction, scores)
        features = item.get("features")
        if problem is None and "features" in item:  # optional: producers before features
            problem = features_problem(features)
        if problem is not None:
            raise BadRequestError(problem)
        return cls(id=event_id, time_ms=time_ms, subject=subject,
                   model=_model_ref(model["name"], model["version"]),
                   prediction=prediction, scores=scores, scored_at_ms=scored_at,
                   features=features)


    @staticmethod
    def canonical(item: Any) -> JsonObject:
        """`item` in the documented shape, as the writer writes it: a plain scored event as
        it came (the common case, checked cheaply), anything else checked field by field
        and rebuilt, so that unknown fields are dropped."""
        if is_plain_scored_event(item):
            return cast(JsonObject, item)
        return ScoredEvent.from_json(item).to_json()


# --- the pipeline hop's batch contract: reader -> app (BatchRequest, BatchAnswer), app ->
# writer (ScoredBatch). The one value travelling back is `BatchAnswer.predictions`: the
# production predictions the reader asks for (ECHO_HEADER) only to send them, with a
# mirrored sample, to the preview app as that sample's `reference`.


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """`POST /v1/batches` on the app. A shadow batch (SHADOW_HEADER) may carry `reference`:
    production's prediction per event id, which the preview app compares its own with."""

    events: list[Event]
    reference: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, document: JsonObject) -> BatchRequest:
        """From a document `decode_batch` read; a bad event is named by its position."""
        events: list[Event] = []
        for index, item in enumerate(document["events"]):
            try:
                events.append(Event.from_json(item))
            except BadRequestError as error:
                raise BadRequestError(f"events[{index}]: {error}") from None
        reference = document.get("reference")
        return cls(events, reference if isinstance(reference, dict) else None)

    @staticmethod
    def encode_json(events: list[JsonObject], reference: dict[str, Any] | None) -> JsonObject:
        """The JSON form of a batch of events in their JSON form (the shadow mirror's)."""
        document: JsonObject = {"events": events}
        if reference is not None:
            document["reference"] = reference
        return document

    @staticmethod
    def encode(encoded_events: Sequence[bytes]) -> bytes:
        """The request body from events already encoded one by one (the reader encodes
        each record once, when it validates it)."""
        return b'{"events":[' + b",".join(encoded_events) + b"]}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event the app could not score, by its position in the request's `events` (ids
    may repeat in a batch), with the reason."""

    index: int
    id: str
    reason: str

    def to_json(self) -> JsonObject:
        return {"index": self.index, "id": self.id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """The app's answer to a batch, sent once the writer confirmed the scored events."""

    scored: int
    rejected: list[Refusal]
    predictions: dict[str, Any] | None = None
    """Production's prediction per event id, only when the request asked (ECHO_HEADER)."""

    def to_json(self) -> JsonObject:
        answer: JsonObject = {"scored": self.scored,
                              "rejected": [item.to_json() for item in self.rejected]}
        if self.predictions is not None:
            answer["predictions"] = self.predictions
        return answer

    @classmethod
    def from_json(cls, answer: Any, ids: Sequence[str]) -> BatchAnswer | None:
        """Read the answer to a request whose events had `ids`; None when it does not
        follow the contract. A refusal without `index` (an app from before positions) is
        matched by id, first come first."""
        if not isinstance(answer, dict) or not isinstance(rejected := answer.get("rejected", []),
                                                          list):
            return None
        refusals: dict[int, Refusal] = {}
        for item in rejected:
            if not isinstance(item, dict):
                return None
            index = item.get("index")
            if index is None:
                index = next((n for n, event_id in enumerate(ids)
                              if event_id == item.get("id") and n not in refusals), None)
            if not isinstance(index, int) or isinstance(index, bool) \
                    or not 0 <= index < len(ids):
                return None
            refusals[index] = Refusal(index, ids[index], str(item.get("reason", "")))
        predictions = answer.get("predictions")
        scored = answer.get("scored")
        if not isinstance(scored, int) or isinstance(scored, bool):
            scored = len(ids) - len(refusals)
        return cls(scored, list(refusals.values()),
                   predictions if isinstance(predictions, dict) else None)


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """`POST /v1/batches` on the writer: the events the app scored."""

    events: list[ScoredEvent]

    def to_json(self) -> JsonObject:
        return {"events": [event.to_json() for event in self.events]}


SCORED_EVENT_FIELDS = frozenset({"id", "subject", "time", "model", "prediction", "scores",
                                 "scored_at", "features"})
_FIELDS_BEFORE_FEATURES = SCORED_EVENT_FIELDS - {"features"}


def is_plain_scored_event(item: Any) -> bool:
    """True when `item` is a scored event in its common form (exactly the documented
    fields, with or without features, a scalar prediction, float scores), which can be
    written as it is. About a third of the cost of ScoredEvent.from_json, which decides
    every other case."""
    if type(item) is not dict:
        return False
    fields = item.keys()
    if fields == SCORED_EVENT_FIELDS:
        if not are_plain_features(item["features"]):
            return False
    elif fields != _FIELDS_BEFORE_FEATURES:
        return False
    event_id, subject, model, scores = item["id"], item["subject"], item["model"], item["scores"]
    return (type(event_id) is str and event_id != ""
            and (subject is None or type(subject) is str)
            and _is_int64(item["time"]) and _is_int64(item["scored_at"])
            and type(model) is dict and model.keys() == _MODEL_FIELDS
            and type(model["name"]) is str and type(model["version"]) is str
            and is_json_scalar(item["prediction"]) and type(scores) is dict
            and all(type(name) is str and type(value) is float and math.isfinite(value)
                    for name, value in scores.items()))


_MODEL_FIELDS = frozenset({"name", "version"})


@functools.lru_cache(maxsize=64)
def _model_ref(name: str, version: str) -> ModelRef:
    """Every event of a batch names the same model: one ModelRef for all of them."""
    return ModelRef(name=name, version=version)


def output_problem(prediction: Any, scores: Any) -> str | None:
    """Why a model's output for one record cannot travel as a scored event, or None: the
    prediction is a JSON scalar or a flat list of them, scores map names to finite numbers."""
    if not is_json_scalar(prediction) and not (
            isinstance(prediction, list) and all(is_json_scalar(item) for item in prediction)):
        return "'prediction' must be a JSON scalar or a flat list of scalars"
    if not isinstance(scores, dict):
        return "'scores' must be an object of names to numbers"
    for name, value in scores.items():
        if not isinstance(name, str) or not _is_number(value):
            return f"score {str(name)[:100]!r} must be a finite number"
    return None


def features_problem(features: Any) -> str | None:
    """Why `features` cannot travel in a scored event, or None: an object of input names
    to JSON scalars."""
    if not isinstance(features, dict):
        return "'features' must be an object of input names to JSON scalars"
    for name, value in features.items():
        if not isinstance(name, str) or not is_json_scalar(value):
            return f"feature {str(name)[:100]!r} must be a JSON scalar"
    return None


def are_plain_features(features: Any) -> bool:
    """features_problem(features) is None, judged by exact types: the writer's fast path
    pays about 0.6 µs for the demo's eight inputs."""
    if type(features) is not dict:
        return False
    for name, value in features.items():
        kind = type(value)
        if type(name) is not str:
            return False
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                return False
        elif kind is not str and kind is not bool and value is not None:
            return False
    return True


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and INT64_MIN <= value <= INT64_MAX


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int64(value)


def is_json_scalar(value: Any) -> bool:
    """null, a string, a boolean, a finite float or a 64-bit integer."""
    return value is None or isinstance(value, str | bool) or _is_number(value)


INT64_SCHEMA: JsonObject = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
SCALAR_SCHEMA: JsonObject = {"type": ["string", "number", "boolean", "null"]}

EVENT_SCHEMA: JsonObject = {
    "type": "object", "required": ["id", "time", "payload"],
    "properties": {"id": {"type": "string"}, "time": INT64_SCHEMA,
                   "subject": {"type": ["string", "null"]}, "payload": {"type": "object"}},
}
"""JSON Schema of `Event.from_json`, for the OpenAPI documents."""

SCORED_EVENT_SCHEMA: JsonObject = {
    "type": "object", "required": ["id", "time", "model", "prediction", "scores", "scored_at"],
    "properties": {
        "id": {"type": "string", "minLength": 1}, "time": INT64_SCHEMA,
        "subject": {"type": ["string", "null"]},
        "model": {"type": "object", "required": ["name", "version"],
                  "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
        "prediction": {"anyOf": [SCALAR_SCHEMA, {"type": "array", "items": SCALAR_SCHEMA}]},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "scored_at": INT64_SCHEMA,
        "features": {"type": "object", "additionalProperties": SCALAR_SCHEMA},
    },
}
"""JSON Schema of `ScoredEvent.from_json`, for the OpenAPI documents."""


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
