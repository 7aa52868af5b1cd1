"""The JSON-lines transport: resumes after its last commit and never half-reads a line."""

from __future__ import annotations

from pathlib import Path

from agogosml.streaming.base import OutRecord
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource


async def test_a_restarted_source_resumes_after_the_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3}\n{"n": 4')
    source = JsonLinesSource(path)
    await source.start()
    first = await source.fetch(2, 0.1)
    assert [r.value for r in first] == [b'{"n": 1}', b'{"n": 2}']
    await source.commit({(str(path), "0"): first[-1].position.offset})
    rest = await source.fetch(10, 0.1)
    assert [r.value for r in rest] == [b'{"n": 3}'], "the unfinished last line waits"

    again = JsonLinesSource(path)
    await again.start()
    assert [r.value for r in await again.fetch(10, 0.1)] == [b'{"n": 3}']
    with path.open("ab") as handle:
        handle.write(b"}\n")
    assert [r.value for r in await again.fetch(10, 0.1)] == [b'{"n": 4}']


async def test_a_paused_source_returns_nothing(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"{}\n")
    source = JsonLinesSource(path)
    await source.start()
    source.pause()
    assert await source.fetch(10, 0.05) == []
    source.resume()
    assert len(await source.fetch(10, 0.05)) == 1


async def test_the_sink_appends_whole_lines(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "out" / "o.jsonl")
    await sink.start()
    await sink.send([OutRecord(b'{"a": 1}'), OutRecord(b'{"a": 2}')])
    await sink.send([OutRecord(b'{"a": 3}')])
    assert (tmp_path / "out" / "o.jsonl").read_bytes() == b'{"a": 1}\n{"a": 2}\n{"a": 3}\n'
