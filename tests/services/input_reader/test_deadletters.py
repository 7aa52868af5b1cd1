"""Dead letters keep everything about a bad record that fits, and can be replayed to the
input; letters that cannot be replayed are skipped and reported."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import orjson
import pytest

from agogosml.errors import InvalidRecordError
from agogosml.services.input_reader.deadletters import (
    MAX_DETAIL_CHARS,
    Rejection,
    dead_letter,
    read_dead_letter,
    replay,
)
from agogosml.streaming.base import Position, SourceRecord
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource


def rejection(value: bytes, reason: str = "r", detail: str = "d", offset: int = 0) -> Rejection:
    return Rejection(SourceRecord(value, Position("in", "0", offset), 0), reason, detail)


def test_a_dead_letter_keeps_reason_coordinates_and_original_bytes() -> None:
    bad = SourceRecord(b"\xff\x00 not json", Position("in", "1", 42), 99, key=b"k")
    letter = dead_letter(Rejection(bad, "not_json", "unexpected byte"), 1_000)
    document = read_dead_letter(letter.value)
    assert document["original_bytes"] == b"\xff\x00 not json"
    assert document["reason"] == "not_json"
    assert document["source"] == {"stream": "in", "partition": "1", "offset": 42,
                                  "timestamp": 99}
    assert document["original_length"] == len(bad.value)
    assert document["truncated"] is False
    assert letter.key == b"k"
    assert ("agogosml-reason", b"not_json") in letter.headers


def test_a_big_original_keeps_its_first_bytes_length_and_digest() -> None:
    original = b"x" * 10_000
    document = orjson.loads(dead_letter(rejection(original), 100).value)
    assert base64.b64decode(document["original"]) == original[:100]
    assert document["original_length"] == 10_000
    assert document["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert document["truncated"] is True
    with pytest.raises(InvalidRecordError, match="truncated"):
        read_dead_letter(dead_letter(rejection(original), 100).value)


def test_a_long_detail_is_cut() -> None:
    document = orjson.loads(dead_letter(rejection(b"{}", detail="y" * 100_000), 100).value)
    assert len(document["detail"]) == MAX_DETAIL_CHARS


def test_something_else_is_not_a_dead_letter() -> None:
    with pytest.raises(InvalidRecordError, match="not_replayable"):
        read_dead_letter(b'{"reason": "x"}')
    with pytest.raises(InvalidRecordError, match="not_replayable"):
        read_dead_letter(b"[1]")


async def test_replay_sends_originals_back_and_commits(tmp_path: Path) -> None:
    letters = tmp_path / "dead.jsonl"
    sink = JsonLinesSink(letters)
    await sink.start()
    originals = [b'{"fixed": 1}', b'{"fixed": 2}']
    await sink.send([dead_letter(rejection(o, offset=n), 1_000)
                     for n, o in enumerate(originals)])
    source, target = JsonLinesSource(letters), JsonLinesSink(tmp_path / "input.jsonl")
    await source.start()
    assert (await replay(source, target, idle_timeout_s=0.1)).replayed == 2
    assert (tmp_path / "input.jsonl").read_bytes().splitlines() == originals
    again = JsonLinesSource(letters)
    await again.start()
    assert (await replay(again, target, idle_timeout_s=0.1)).replayed == 0, \
        "replayed letters are committed"


async def test_replay_filters_by_reason_and_skips_what_it_cannot_replay(
        tmp_path: Path) -> None:
    letters = tmp_path / "dead.jsonl"
    sink = JsonLinesSink(letters)
    await sink.start()
    await sink.send([dead_letter(rejection(b'{"a": 1}', "app_error", offset=0), 1_000),
                     dead_letter(rejection(b'{"a": 2}', "schema_violation", offset=1), 1_000),
                     dead_letter(rejection(b"x" * 50, "app_error", offset=2), 10)])
    with letters.open("ab") as out:
        out.write(b'{"not": "a dead letter"}\n')
    source, target = JsonLinesSource(letters), JsonLinesSink(tmp_path / "input.jsonl")
    await source.start()
    report = await replay(source, target, idle_timeout_s=0.1, reasons={"app_error"})
    assert report.replayed == 1
    assert report.filtered_out == 1
    assert len(report.skipped) == 2, "the truncated letter and the malformed one"
    assert (tmp_path / "input.jsonl").read_bytes().splitlines() == [b'{"a": 1}']
