"""Turning raw source records into events, or into a reason they belong in dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from agogosml.envelope import Event
from agogosml.errors import ConfigurationError, InvalidRecordError
from agogosml.streaming.base import SourceRecord

# Keywords that mean the same in draft-07 and 2020-12. A schema made only of these is
# checked by fastjsonschema's generated code (about 20x faster than jsonschema on the
# demo schema); any other schema, and every error message, comes from jsonschema.
PORTABLE_KEYWORDS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "default", "examples",
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "minProperties", "maxProperties", "items", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not",
})


def is_portable(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not set(schema) <= PORTABLE_KEYWORDS:
        return False
    if isinstance(schema.get("items"), list):
        return False  # tuple form: `prefixItems` in 2020-12
    children = [*schema.get("properties", {}).values(), *schema.get("allOf", []),
                *schema.get("anyOf", []), *schema.get("oneOf", [])]
    children += [schema[key] for key in ("items", "additionalProperties", "not")
                 if key in schema]
    return all(is_portable(child) for child in children)


def _compile_fast(schema: dict[str, Any]) -> Any:
    draft07 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(draft07)


EARLIEST_MS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
LATEST_MS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)
"""Event times outside the years 1 to 9999 are refused: nothing downstream can show them."""


class RecordValidator:
    def __init__(self, schema: dict[str, Any] | None, max_record_bytes: int,
                 id_field: str | None, subject_field: str | None,
                 time_field: str | None) -> None:
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as error:
                raise ConfigurationError(f"the JSON Schema is invalid: {error.message}") from None
        self._validator = Draft202012Validator(schema) if schema is not None else None
        self._fast = _compile_fast(schema) if schema is not None and is_portable(schema) \
            else None
        self.max_record_bytes = max_record_bytes
        self.id_field = id_field
        self.subject_field = subject_field
        self.time_field = time_field

    def to_event(self, record: SourceRecord) -> Event:
        if not record.value:
            raise InvalidRecordError("empty", "the record has no value (a tombstone or an "
                                              "empty message)")
        if len(record.value) > self.max_record_bytes:
            raise InvalidRecordError(
                "too_large", f"{len(record.value)} bytes, the limit is {self.max_record_bytes}"
            )
        try:
            payload = orjson.loads(record.value)
        except orjson.JSONDecodeError as error:
            raise InvalidRecordError("not_json", str(error)) from None
        if not isinstance(payload, dict):
            raise InvalidRecordError("not_object", f"got a JSON {type(payload).__name__}")
        if self._validator is not None:
            try:
                self._check_schema(payload)
            except RecursionError:
                raise InvalidRecordError("too_deep", "nested deeper than the schema check "
                                                     "can follow") from None
        return Event(
            id=self._event_id(payload, record),
            subject=self._subject(payload),
            time_ms=self._time_ms(payload, record),
            payload=payload,
        )

    def _check_schema(self, payload: dict[str, Any]) -> None:
        assert self._validator is not None
        if self._fast is None:
            if self._validator.is_valid(payload):
                return
            raise InvalidRecordError("schema_violation", self._explain(payload, None))
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaValueException as error:
            # The fast check decides; jsonschema only words the reason (and may disagree,
            # e.g. on a pattern's `$` before a trailing newline: ECMA-262 is the rule).
            raise InvalidRecordError("schema_violation", self._explain(payload, error)) from None

    def _explain(self, payload: dict[str, Any],
                 fast_error: fastjsonschema.JsonSchemaValueException | None) -> str:
        assert self._validator is not None
        try:
            violation = best_match(self._validator.iter_errors(payload))
        except RecursionError:
            violation = None
        if violation is not None:
            where = "/".join(str(part) for part in violation.absolute_path) or "(record)"
            return f"{where}: {violation.message}"
        if fast_error is not None:
            where = "/".join(str(part) for part in fast_error.path[1:]) or "(record)"
            return f"{where}: {fast_error.message}"
        return "(record): does not match the schema"

    def _event_id(self, payload: dict[str, Any], record: SourceRecord) -> str:
        if self.id_field is not None:
            value = payload.get(self.id_field)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                return str(value)
        position = record.position
        return f"{position.stream}-{position.partition}-{position.offset}"

    def _subject(self, payload: dict[str, Any]) -> str | None:
        if self.subject_field is None:
            return None
        value = payload.get(self.subject_field)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise InvalidRecordError("bad_subject",
                                 f"{self.subject_field} must be a string or a number")

    def _time_ms(self, payload: dict[str, Any], record: SourceRecord) -> int:
        if self.time_field is None or payload.get(self.time_field) is None:
            return record.timestamp_ms
        value = payload[self.time_field]
        millis: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            millis = value
        elif isinstance(value, str):
            millis = _iso_millis(value)
        if millis is None or not EARLIEST_MS <= millis <= LATEST_MS:  # NaN fails this too
            raise InvalidRecordError(
                "bad_time", f"{self.time_field} must be epoch milliseconds or an ISO 8601 "
                            "string, within the years 1 to 9999"
            )
        return int(millis)


def _iso_millis(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp() * 1000
    except (ValueError, OverflowError):
        return None
