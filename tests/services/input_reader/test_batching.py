"""Adaptive batching: with nothing in flight a batch goes at once, whatever the linger;
while batches are in flight, the next one lingers to fill, up to the size and the linger
caps, and goes as soon as the last batch in flight is acknowledged. Against an in-memory
source that hands out records as the test releases them, and an app that holds batches
until the test lets them through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import DeadLetterWriter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.pipeline import BatchPolicy, InputReader
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.base import DrainHook, PartitionKey, Position, SourceRecord
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.client import BatchClient

WAIT_S = 5.0
FAR_AWAY_S = 60.0
"""A linger no test may wait out."""


class ReleasedSource:
    """Hands out the records `release` made available, at most `per_fetch` per fetch, and
    waits up to the fetch's timeout for the first one (like Kafka's getmany)."""

    def __init__(self, per_fetch: int) -> None:
        self.per_fetch = per_fetch
        self.waiting: asyncio.Queue[SourceRecord] = asyncio.Queue()
        self.commits: list[int] = []
        self.paused = False
        self.commit_gate: asyncio.Event | None = None
        """When set, each commit waits for it (a slow broker)."""
        self._next_offset = 0

    def release(self, count: int) -> None:
        for _ in range(count):
            value = orjson.dumps({"id": f"e{self._next_offset}", "x": self._next_offset})
            self.waiting.put_nowait(SourceRecord(value, Position("t", "0", self._next_offset),
                                                 0))
            self._next_offset += 1

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def set_drain_hook(self, hook: DrainHook) -> None:
        pass

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        if self.paused:
            return []
        try:
            first = await asyncio.wait_for(self.waiting.get(), timeout_s) if timeout_s > 0 \
                else self.waiting.get_nowait()
        except (TimeoutError, asyncio.QueueEmpty):
            return []
        records = [first]
        while len(records) < min(max_records, self.per_fetch) and not self.waiting.empty():
            records.append(self.waiting.get_nowait())
        return records

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        self.commits.append(last_done[("t", "0")])
        if self.commit_gate is not None:
            await self.commit_gate.wait()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def is_ready(self) -> bool:
        return True

    async def lag(self) -> Mapping[PartitionKey, int]:
        return {("t", "0"): self.waiting.qsize()}


class HoldingApp(BatchClient):
    """Acknowledges every batch, once `open` is set; remembers the size of each."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/v1/batches", 1.0)
        self.sizes: list[int] = []
        self.open = asyncio.Event()

    async def post_encoded(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        count = len(orjson.loads(body)["events"])
        self.sizes.append(count)
        await self.open.wait()
        return {"scored": count, "rejected": []}


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)  # polling a condition the reader's tasks make true


Started = tuple[InputReader, ReleasedSource, HoldingApp]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Started]]:
    readers: list[tuple[InputReader, HoldingApp]] = []

    def started(policy: BatchPolicy, per_fetch: int = 1_000) -> Started:
        source, app = ReleasedSource(per_fetch), HoldingApp()
        backoff = Backoff(initial_s=0.01, max_s=0.05)
        reader = InputReader(
            source=source, app_client=app,
            dead_letters=DeadLetterWriter(JsonLinesSink(tmp_path / "dead.jsonl"), backoff),
            validator=RecordValidator(None, 10_000, "id", None, None),
            metrics=ReaderMetrics(CollectorRegistry()), policy=policy, backoff=backoff,
            progress=ProgressWatch(60, 300))
        readers.append((reader, app))
        return reader, source, app

    yield started
    for reader, app in readers:
        app.open.set()
        await reader.stop()


async def test_a_lone_record_is_sent_at_once_whatever_the_linger(
        start: Callable[..., Started]) -> None:
    reader, source, app = start(BatchPolicy(max_size=500, linger_s=FAR_AWAY_S))
    app.open.set()
    await reader.start()
    source.release(1)
    await until(lambda: source.commits == [0], "the lone record to be acknowledged, committed")
    assert app.sizes == [1]
    source.release(1)
    await until(lambda: source.commits == [0, 1], "the next one, as promptly")
    assert app.sizes == [1, 1]


async def test_while_batches_are_in_flight_they_fill_up_to_the_cap(
        start: Callable[..., Started]) -> None:
    """Records trickle in one per fetch; behind a batch the app holds, the next batches
    fill to max_size, up to max_in_flight of them, and then the reader pauses. Nothing is
    committed before the app acknowledges, and commits keep fetch order."""
    reader, source, app = start(BatchPolicy(max_size=10, linger_s=FAR_AWAY_S, max_in_flight=4),
                                per_fetch=1)
    await reader.start()
    source.release(1)
    await until(lambda: app.sizes == [1], "the first record, sent at once")
    source.release(35)
    await until(lambda: app.sizes == [1, 10, 10, 10], "three full batches behind it")
    await until(lambda: source.paused, "the reader to pause at max_in_flight")
    assert source.commits == []
    assert source.waiting.qsize() == 5, "paused: the rest stays in the source"
    app.open.set()
    await until(lambda: source.commits[-1:] == [35], "every record to be committed")
    assert sum(app.sizes) == 36
    assert source.commits == sorted(source.commits)


async def test_a_batch_lingers_no_longer_than_the_linger(
        start: Callable[..., Started]) -> None:
    reader, source, app = start(BatchPolicy(max_size=10, linger_s=0.05), per_fetch=1)
    await reader.start()
    source.release(1)
    await until(lambda: app.sizes == [1], "the first record, sent at once")
    source.release(3)
    await until(lambda: app.sizes == [1, 3], "the partial batch, once the linger is over")
    assert source.commits == [], "still held by the app"


async def test_the_linger_ends_when_the_last_batch_in_flight_is_acknowledged(
        start: Callable[..., Started]) -> None:
    reader, source, app = start(BatchPolicy(max_size=10, linger_s=FAR_AWAY_S), per_fetch=1)
    await reader.start()
    source.release(1)
    await until(lambda: app.sizes == [1], "the first record, sent at once")
    source.release(2)
    await until(lambda: source.waiting.empty(), "both records to be fetched")
    assert app.sizes == [1], "lingering behind the batch in flight"
    app.open.set()
    await until(lambda: app.sizes == [1, 2], "the lingering batch, once nothing is in flight")
    await until(lambda: source.commits[-1:] == [2], "every record to be committed")


async def test_batches_that_finish_during_a_commit_share_the_next_one(
        start: Callable[..., Started]) -> None:
    """Single-record batches: while the first commit waits on the broker, the batches
    acknowledged meanwhile free their slots at once and go in one commit after it, instead
    of one commit round trip each."""
    reader, source, app = start(BatchPolicy(max_size=1, linger_s=0, max_in_flight=8))
    source.commit_gate = gate = asyncio.Event()
    await reader.start()
    try:
        source.release(1)
        app.open.set()
        await until(lambda: source.commits == [0], "the first commit to begin")
        source.release(7)
        await until(lambda: sum(app.sizes) == 8, "the seven batches behind it, acknowledged")
        await until(lambda: next(iter(reader.metrics.in_flight.collect())).samples[0].value == 0,
                    "their slots freed while the commit is still under way")
        assert source.commits == [0]
    finally:
        gate.set()
    await until(lambda: source.commits == [0, 7], "one commit for the seven")
