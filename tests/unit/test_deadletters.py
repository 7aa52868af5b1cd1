"""Dead letters keep everything about a bad record, and can be replayed to the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from agogosml.errors import InvalidRecordError
from agogosml.services.input_reader.deadletters import dead_letter, read_dead_letter, replay
from agogosml.streaming.base import Position, SourceRecord
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource


def test_a_dead_letter_keeps_reason_coordinates_and_original_bytes() -> None:
    bad = SourceRecord(b"\xff\x00 not json", Position("in", "1", 42), 99, key=b"k")
    letter = dead_letter(bad, "not_json", "unexpected byte")
    document = read_dead_letter(letter.value)
    assert document["original_bytes"] == b"\xff\x00 not json"
    assert document["reason"] == "not_json"
    assert document["source"] == {"stream": "in", "partition": "1", "offset": 42,
                                  "timestamp": 99}
    assert letter.key == b"k"
    assert ("agogosml-reason", b"not_json") in letter.headers


def test_something_else_is_not_a_dead_letter() -> None:
    with pytest.raises(InvalidRecordError, match="not_a_dead_letter"):
        read_dead_letter(b'{"reason": "x"}')


async def test_replay_sends_originals_back_and_commits(tmp_path: Path) -> None:
    letters = tmp_path / "dead.jsonl"
    sink = JsonLinesSink(letters)
    await sink.start()
    originals = [b'{"fixed": 1}', b'{"fixed": 2}']
    await sink.send([dead_letter(SourceRecord(o, Position("in", "0", n), 0), "r", "d")
                     for n, o in enumerate(originals)])
    source, target = JsonLinesSource(letters), JsonLinesSink(tmp_path / "input.jsonl")
    await source.start()
    assert await replay(source, target, idle_timeout_s=0.1) == 2
    assert (tmp_path / "input.jsonl").read_bytes().splitlines() == originals
    again = JsonLinesSource(letters)
    await again.start()
    assert await replay(again, target, idle_timeout_s=0.1) == 0, "replayed letters are committed"
