"""Raw records become events, or a dead-letter reason a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from agogosml.errors import ConfigurationError, InvalidRecordError
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.base import Position, SourceRecord

SCHEMA = orjson.loads(
    (Path(__file__).parents[3] / "agogosml" / "demo" / "transaction.schema.json").read_bytes())
GOOD = {"transaction_id": "tx-1", "customer_id": "C1", "amount": 10.5, "hour": 3,
        "distance_from_home_km": 1.0, "transactions_last_24h": 2,
        "merchant_category": "fuel", "channel": "pos", "country": "DE", "card_present": True,
        "when": "2026-01-02T03:04:05+00:00"}


def record(value: Any, offset: int = 7) -> SourceRecord:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SourceRecord(value=raw, position=Position("in", "2", offset), timestamp_ms=1234)


def validator(**overrides: Any) -> RecordValidator:
    options: dict[str, Any] = {"schema": SCHEMA, "max_record_bytes": 1024,
                               "id_field": "transaction_id", "subject_field": "customer_id",
                               "time_field": None}
    return RecordValidator(**{**options, **overrides})


def test_a_good_record_becomes_an_event_with_id_subject_and_time() -> None:
    event = validator().to_event(record(GOOD))
    assert (event.id, event.subject, event.time_ms) == ("tx-1", "C1", 1234)
    assert event.payload == GOOD


def test_without_an_id_field_the_id_comes_from_the_source_coordinates() -> None:
    first = validator(id_field=None).to_event(record(GOOD))
    again = validator(id_field=None).to_event(record(GOOD))
    assert first.id == again.id == "in-2-7"


def test_event_time_can_come_from_the_payload() -> None:
    event = validator(time_field="when").to_event(record(GOOD))
    assert event.time_ms == 1767323045000
    with pytest.raises(InvalidRecordError, match="bad_time"):
        validator(time_field="when").to_event(record(dict(GOOD, when="yesterday")))


@pytest.mark.parametrize(("value", "reason", "detail"), [
    (b"{oops", "not_json", ""),
    (b"[1]", "not_object", "list"),
    (dict(GOOD, hour=30), "schema_violation", "hour: 30 is greater than the maximum of 23"),
    ({k: v for k, v in GOOD.items() if k != "amount"}, "schema_violation", "'amount' is a "
     "required property"),
    (dict(GOOD, country="Germany"), "schema_violation", "country:"),
    (dict(GOOD, name="x" * 2000), "too_large", "the limit is 1024"),
    (b"", "empty", "tombstone"),
    # jsonschema's `$` matches before a trailing newline; ECMA-262's (the fast check) not.
    (dict(GOOD, country="US\n"), "schema_violation", "country"),
])
def test_bad_records_are_refused_with_a_reason(value: Any, reason: str, detail: str) -> None:
    with pytest.raises(InvalidRecordError) as refused:
        validator().to_event(record(value))
    assert refused.value.reason == reason
    assert detail in refused.value.detail


def test_a_subject_must_be_a_string_or_a_number() -> None:
    with pytest.raises(InvalidRecordError, match="bad_subject"):
        validator(schema=None).to_event(record(dict(GOOD, customer_id={"nested": [1]})))


@pytest.mark.parametrize("when", [1e300, -1e300, 2**62, "0001-01-01T00:00:00+01:00",
                                  "9999-12-31T23:59:59-05:00", True])
def test_event_times_out_of_range_are_refused(when: Any) -> None:
    with pytest.raises(InvalidRecordError, match="bad_time"):
        validator(time_field="when").to_event(record(dict(GOOD, when=when)))


def test_a_violation_deeper_than_the_recursion_limit_still_gets_a_reason() -> None:
    deep = b"[" * 1_000 + b"0" + b"]" * 1_000
    value = orjson.dumps(GOOD)[:-1] + b', "extra": ' + deep + b"}"
    schema = {**SCHEMA, "additionalProperties": {"not": {"type": "array",
                                                         "items": {"$ref": "#"}}}}
    with pytest.raises(InvalidRecordError) as refused:
        validator(schema=schema, max_record_bytes=10_000).to_event(record(value))
    assert refused.value.reason in {"schema_violation", "too_deep"}


def test_an_invalid_schema_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="JSON Schema is invalid"):
        validator(schema={"type": "no-such-type"})


def test_portable_schemas_take_the_fast_path_with_the_same_verdicts() -> None:
    from agogosml.services.input_reader.validation import is_portable

    assert is_portable(SCHEMA)
    assert not is_portable({"type": "object", "properties": {"a": {"format": "email"}}})
    assert not is_portable({"type": "array", "prefixItems": [{"type": "string"}]})
    assert not is_portable({"type": "array", "items": [{"type": "string"}]})
    records = [GOOD, dict(GOOD, hour=23), dict(GOOD, hour=24), dict(GOOD, amount=-1),
               dict(GOOD, channel="fax"), dict(GOOD, card_present="yes"),
               dict(GOOD, country="de"), {k: v for k, v in GOOD.items() if k != "hour"}]
    fast = validator()
    slow = validator(schema={**SCHEMA, "$comment": "x", "properties": {
        **SCHEMA["properties"], "email": {"type": "string", "format": "email"}}})
    assert fast._fast is not None
    assert slow._fast is None

    def verdict(check: RecordValidator, value: dict[str, Any]) -> str:
        try:
            check.to_event(record(value))
        except InvalidRecordError as error:
            return error.detail
        return "valid"

    assert [verdict(fast, r) for r in records] == [verdict(slow, r) for r in records]
    assert [verdict(fast, r) for r in records][:3] == [
        "valid", "valid", "hour: 24 is greater than the maximum of 23"]
