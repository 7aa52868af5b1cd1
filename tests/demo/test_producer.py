"""The demo producer rides out an outage of its destination: a real broker of its own is
stopped and started again under it, and every event still arrives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest

from agogosml.demo.data import events
from agogosml.demo.producer import produce
from agogosml.errors import SinkError
from agogosml.localstack.broker import KafkaBroker
from agogosml.retry import Backoff
from agogosml.streaming.base import OutRecord, Sink
from agogosml.streaming.kafka import KafkaSink
from tests.kafka_helpers import TopicReader, create_topics

FAST_RETRY = Backoff(initial_s=0.1, max_s=1.0)


class WatchedSink:
    """A sink that counts what it confirmed and what it refused, and when."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.confirmed: list[tuple[float, int]] = []
        self.failures = 0
        self.last_failure = ""

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def is_ready(self) -> bool:
        return await self.inner.is_ready()

    async def send(self, records: Sequence[OutRecord]) -> None:
        try:
            await self.inner.send(records)
        except SinkError as error:
            self.failures += 1
            self.last_failure = f"{time.monotonic():.1f}: {error}"
            raise
        self.confirmed.append((time.monotonic(), len(records)))

    @property
    def events_confirmed(self) -> int:
        return sum(size for _, size in self.confirmed)


class DownSink:
    """Refuses the first `outage` batches as a broker that is down would."""

    def __init__(self, outage: int) -> None:
        self.outage = outage

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def is_ready(self) -> bool:
        return self.outage == 0

    async def send(self, records: Sequence[OutRecord]) -> None:
        if self.outage:
            self.outage -= 1
            raise SinkError("Kafka did not acknowledge the batch: KafkaTimeoutError")


async def until(condition: Callable[[], bool], timeout_s: float,
                what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            described = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout_s}s waiting for {described}")
        await asyncio.sleep(0.05)  # polling the condition until it holds


async def test_keeps_the_rate_after_an_outage_instead_of_bursting(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agogosml")
    down = DownSink(outage=4)
    sink = WatchedSink(down)
    rate, count = 100.0, 50  # batches of 10, one every 0.1 s

    sent = await produce(sink, count, rate, backoff=Backoff(initial_s=0.6, max_s=0.6))

    assert sent == count
    assert sink.failures == 4
    retries = [r for r in caplog.records
               if r.getMessage() == "sending demo events failed, retrying"]
    assert [r.__dict__["attempt"] for r in retries] == [1, 2, 3, 4]
    assert any(r.getMessage() == "resuming the demo rate" for r in caplog.records)
    times = [at for at, _ in sink.confirmed]
    # Four delays of at least 0.3 s put the producer 1.2 s behind; the four batches after
    # the first still take 0.1 s each instead of going out at once.
    assert times[-1] - times[0] >= 0.35


async def test_every_event_arrives_through_a_broker_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")  # 256 MB ran out on restart under load
    await asyncio.to_thread(broker.start)
    topic = "demo-input"
    count, rate = 1_500, 150.0
    sink = WatchedSink(KafkaSink(topic, {"bootstrap_servers": broker.bootstrap},
                                 delivery_timeout_s=2.0))
    try:
        await create_topics(broker.bootstrap, [topic])
        await sink.start()
        producing = asyncio.create_task(produce(sink, count, rate, backoff=FAST_RETRY))
        await until(lambda: sink.events_confirmed >= 300, 30, "events before the outage")

        await asyncio.to_thread(broker.stop)
        await until(lambda: sink.failures >= 2 or producing.done(), 60, "refused batches")
        assert not producing.done(), "the producer gave up during the outage"
        before_restart = sink.events_confirmed
        assert before_restart < count

        await asyncio.to_thread(broker.start)
        restarted = time.monotonic()
        await until(lambda: producing.done(), 90,
                    lambda: f"the producer to finish; restarted at {restarted:.1f}, "
                            f"{sink.events_confirmed} confirmed, last failure {sink.last_failure}")
        assert producing.result() == count
        assert sink.events_confirmed == count

        expected = {item["transaction_id"] for item in events(count)}
        async with TopicReader(broker.bootstrap, topic) as reader:
            await reader.until(
                lambda records: expected <= {r["transaction_id"] for r in records},
                60, f"all {count} events on {topic}")
        assert {r["transaction_id"] for r in reader.records} == expected
        assert orjson.loads(orjson.dumps(reader.records[0]))["transaction_id"]
    finally:
        await sink.stop()
        await asyncio.to_thread(broker.stop)
