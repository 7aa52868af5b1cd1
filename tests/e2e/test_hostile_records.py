"""Whatever arrives on the input, the stream goes on: property-based tests feed arbitrary
bytes, arbitrary JSON and hostile variants of real events through the three real services
on a real broker, and check that every record is accounted for exactly once and every
offset committed.

The dead-letter topic is created with a small max.message.bytes, so big letters are
refused by the broker and must fall back to truncated or minimal letters.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import pipeline_token_env
from tests.conftest import Registry
from tests.kafka_helpers import group_caught_up, read_topic, wait_for
from tests.servers import PIPELINE_TOKEN

PARTITIONS = 2
REASONS_SEEN: Counter[str] = Counter()
"""Dead-letter reasons across the module, printed at its end (run with -s to see)."""
DEADLETTER_MAX_MESSAGE_BYTES = 4_000
MAX_RECORD_BYTES = 8_192
TEMPLATE = events(1, seed=7)[0]


@dataclass
class Stack:
    bootstrap: str
    input_topic: str
    output_topic: str
    deadletter_topic: str
    group: str
    reader: ServiceProcess


async def _create_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(f"{prefix}.input", PARTITIONS, 1),
            NewTopic(f"{prefix}.output", PARTITIONS, 1),
            NewTopic(f"{prefix}.deadletter", 1, 1,
                     topic_configs={"max.message.bytes": str(DEADLETTER_MAX_MESSAGE_BYTES)}),
        ])
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def stack(kafka: KafkaBroker, mlflow_registry: Registry, schema_path_module: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = "hostile"
    asyncio.run(_create_topics(kafka.bootstrap, prefix))
    logs = tmp_path_factory.mktemp("hostile-logs")
    ports = {name: free_port() for name in ("writer", "app", "reader")}
    writer = ServiceProcess("output_writer", ports["writer"], {
        "AGOGOSML_WRITER_PORT": str(ports["writer"]),
        "AGOGOSML_WRITER_SINK": "kafka",
        "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "AGOGOSML_WRITER_OUTPUT_STREAM": f"{prefix}.output",
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
    }, logs)
    app = ServiceProcess("app", ports["app"], {
        "AGOGOSML_APP_PORT": str(ports["app"]),
        "AGOGOSML_APP_MODEL_URI": mlflow_registry.model_uri,
        "AGOGOSML_APP_MLFLOW_TRACKING_URI": mlflow_registry.tracking_uri,
        "AGOGOSML_APP_WRITER_URL": writer.url,
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
    }, logs)
    reader = ServiceProcess("input_reader", ports["reader"], {
        "AGOGOSML_READER_PORT": str(ports["reader"]),
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
        "AGOGOSML_READER_SOURCE": "kafka",
        "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "AGOGOSML_READER_INPUT_STREAM": f"{prefix}.input",
        "AGOGOSML_READER_DEADLETTER_STREAM": f"{prefix}.deadletter",
        "AGOGOSML_READER_CONSUMER_GROUP": f"{prefix}-reader",
        "AGOGOSML_READER_APP_URL": app.url,
        "AGOGOSML_READER_SCHEMA_PATH": str(schema_path_module),
        "AGOGOSML_READER_ID_FIELD": "transaction_id",
        "AGOGOSML_READER_SUBJECT_FIELD": "customer_id",
        "AGOGOSML_READER_TIME_FIELD": "time",
        "AGOGOSML_READER_MAX_RECORD_BYTES": str(MAX_RECORD_BYTES),
        "AGOGOSML_READER_DEADLETTER_MAX_ORIGINAL_BYTES": "2048",
        "AGOGOSML_READER_BATCH_MAX_SIZE": "20",
        "AGOGOSML_READER_RETRY_MAX_MS": "500",
    }, logs)
    services = (writer, app, reader)
    try:
        for service in services:
            service.start()
            service.wait_ready()
        yield Stack(kafka.bootstrap, f"{prefix}.input", f"{prefix}.output",
                    f"{prefix}.deadletter", f"{prefix}-reader", reader)
        print(f"\nhostile records: dead letters by reason {dict(REASONS_SEEN)}")
    finally:
        for service in reversed(services):
            service.terminate(timeout_s=30)


@pytest.fixture(scope="module")
def schema_path_module() -> Path:
    return Path(__file__).parents[2] / "agogosml" / "demo" / "transaction.schema.json"


# --- what arrives on the input ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
"""Any JSON, including ints beyond 64 bits and NaN/Infinity (written by Python's json)."""


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@st.composite
def transactions(draw: st.DrawFn, tag: str) -> bytes:
    """A real demo event with hostile edits: odd values, control characters, deep
    nesting, out-of-range times, ids shared with other records, oversized fields."""
    item: dict[str, Any] = dict(TEMPLATE, transaction_id=f"{tag}-{draw(st.integers(0, 3))}")
    editable = sorted(set(TEMPLATE) - {"transaction_id"})  # outputs are found by id
    for field in draw(st.sets(st.sampled_from(editable), max_size=3)):
        item[field] = draw(json_values | st.text(alphabet=st.characters(codec="utf-8")))
    if draw(st.booleans()):
        item["country"] = draw(st.sampled_from(["US\n", "de", "USA", "\u0000S", "GB"]))
    if draw(st.booleans()):
        item["time"] = draw(st.sampled_from([1e300, -1e300, 2**62, "0001-01-01T00:00:00+01:00",
                                             "2026-12-02T10:00:00", 1_700_000_000_000]))
    if draw(st.booleans()):
        item["notes"] = "x" * draw(st.sampled_from([10, 3_000, MAX_RECORD_BYTES]))
    encoded = json.dumps(item).encode()
    if draw(st.integers(0, 4)) == 0:  # nesting beyond what orjson writes (it reads more)
        encoded = encoded[:-1] + b', "deep": ' + nested(draw(st.integers(200, 1_100))) + b"}"
    return encoded


def records(tag: str) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        transactions(tag),
        transactions(tag),
        st.binary(max_size=200),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.just(None),  # a tombstone
        st.just(b""),
        st.just(b'{"transaction_id": "x", "amount": 1e400}'),
        st.just(b'{"transaction_id": "\xff\xfe"}'),  # invalid UTF-8
        st.integers(1, 200).map(nested),
    )


# --- accounting ---------------------------------------------------------------------

async def _produce(bootstrap: str, topic: str,
                   values: list[bytes | None]) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                max_request_size=2 * MAX_RECORD_BYTES + 1_000_000)
    await producer.start()
    try:
        # A tombstone (null value) needs a key.
        sent = [await producer.send(topic, value, key=b"k" if value is None else None,
                                    partition=n % PARTITIONS)
                for n, value in enumerate(values)]
        metadata = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metadata]


async def _account(stack: Stack, tag: str,
                   values: list[bytes | None]) -> dict[int, dict[str, Any]]:
    """Checks every record was scored or dead-lettered exactly once; returns the dead
    letters by the position of their record in `values`."""
    positions = await _produce(stack.bootstrap, stack.input_topic, values)
    await wait_for(lambda: group_caught_up(stack.bootstrap, stack.group, stack.input_topic),
                   90, "the reader to commit every record")
    letters = [x for x in await read_topic(stack.bootstrap, stack.deadletter_topic)
               if x["source"]["stream"] == stack.input_topic
               and (int(x["source"]["partition"]), x["source"]["offset"]) in set(positions)]
    scored = [x for x in await read_topic(stack.bootstrap, stack.output_topic)
              if x["id"].startswith(f"{tag}-")]

    REASONS_SEEN.update(x["reason"] + ("/minimal" if x.get("minimal") else "")
                        + ("/truncated" if x.get("truncated") else "") for x in letters)
    lettered = Counter((int(x["source"]["partition"]), x["source"]["offset"]) for x in letters)
    assert max(lettered.values(), default=1) == 1, "a record was dead-lettered twice"
    assert len(letters) + len(scored) == len(values), \
        f"{len(values)} records in, {len(scored)} scored and {len(letters)} dead-lettered"
    expected_ids = Counter(orjson.loads(value or b"{}")["transaction_id"]
                           for value, position in zip(values, positions, strict=True)
                           if position not in lettered)
    assert Counter(x["id"] for x in scored) == expected_ids
    for letter in letters:
        assert letter["reason"]
        if not letter.get("truncated"):
            original = base64.b64decode(letter["original"])
            assert original == (values[positions.index((int(letter["source"]["partition"]),
                                                        letter["source"]["offset"]))] or b"")
    return {positions.index((int(x["source"]["partition"]), x["source"]["offset"])): x
            for x in letters}


def _still_healthy(stack: Stack) -> None:
    assert httpx.get(f"{stack.reader.url}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{stack.reader.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


# --- the properties -----------------------------------------------------------------

examples = iter(range(1_000_000))


# No shrinking: each example takes a second or more against the real services, and the
# failing example is printed whole anyway.
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_record_is_scored_or_dead_lettered_exactly_once(stack: Stack,
                                                              data: st.DataObject) -> None:
    tag = f"h{next(examples)}"
    values = data.draw(st.lists(records(tag), min_size=1, max_size=30), label="records")
    asyncio.run(_account(stack, tag, values))
    _still_healthy(stack)


def known(tag: str, **changes: Any) -> bytes:
    return orjson.dumps(dict(TEMPLATE, transaction_id=tag, **changes))


def with_raw(tag: str, name: str, raw: bytes) -> bytes:
    return known(tag)[:-1] + b',"' + name.encode() + b'":' + raw + b"}"


KNOWN_CLASSES: list[tuple[str, bytes | None, str]] = [
    ("validators disagree", known("k-1", country="US\n"), "schema_violation"),
    ("nested deeper than orjson writes", with_raw("k-2", "deep", nested(300)),
     "unserializable"),
    ("nested deeper than orjson reads", with_raw("k-3", "deep", nested(1_100)), "not_json"),
    ("time out of range", known("k-4", time=1e300), "bad_time"),
    ("time before year 1", known("k-5", time="0001-01-01T00:00:00+01:00"), "bad_time"),
    ("number beyond a double", with_raw("k-6", "amount", b"1e400"), "not_json"),
    ("invalid UTF-8", with_raw("k-7", "name", b'"\xff\xfe"'), "not_json"),
    ("tombstone", None, "empty"),
    ("empty message", b"", "empty"),
    ("control characters", known("k-8", merchant_category="\u0000\u001b[31m"), "scored"),
    ("larger than max_record_bytes", known("k-9", notes="x" * MAX_RECORD_BYTES), "too_large"),
    ("error detail repeating a long value", known("k-10", merchant_category="y" * 3_000),
     "schema_violation"),
    ("subject that is an object", known("k-11", customer_id={"a": 1}), "schema_violation"),
    ("duplicate id, good twin", known("k-dup"), "scored"),
    ("duplicate id, bad twin", known("k-dup", hour=99), "schema_violation"),
    ("duplicate id, second good twin", known("k-dup", amount=3.5), "scored"),
]


def test_each_known_class_of_hostile_record_meets_its_fate(stack: Stack) -> None:
    values = [value for _, value, _ in KNOWN_CLASSES]
    letters = asyncio.run(_account(stack, "k", values))
    fates = {name: letters[n]["reason"] if n in letters else "scored"
             for n, (name, _, _) in enumerate(KNOWN_CLASSES)}
    assert fates == {name: fate for name, _, fate in KNOWN_CLASSES}
    long_detail = letters[next(n for n, (name, _, _) in enumerate(KNOWN_CLASSES)
                               if name.startswith("error detail"))]["detail"]
    assert len(long_detail) <= 1_000
    _still_healthy(stack)


def test_a_burst_of_hostile_records_larger_than_the_reader_holds_in_flight(
        stack: Stack) -> None:
    """More bad records than max_in_flight x batch size: the wedge the issue found."""
    bad = orjson.dumps(dict(TEMPLATE, country="US\n"))
    tag = "burst"
    values: list[bytes | None] = []
    for n in range(400):
        good = orjson.dumps(dict(TEMPLATE, transaction_id=f"{tag}-{n}"))
        values.append(good if n % 3 else bad)
    asyncio.run(_account(stack, tag, values))
    _still_healthy(stack)
