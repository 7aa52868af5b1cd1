"""The baseline: a raw Kafka pass-through with the pipeline's delivery semantics.

A consumer group member reads the input topic, produces every record unchanged to
the output topic with an idempotent acks=all producer, and commits the offsets of
a batch only after every record of it was acknowledged (at least once). Like the
input reader, it keeps up to MAX_IN_FLIGHT batches waiting for acknowledgements and
commits them in order. No HTTP, no validation, no model: what the broker and
aiokafka alone cost.

Run as a child process so it gets its own core, like each pipeline service:

    python -m bench.passthrough BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

BATCH_MAX_SIZE = 500
"""Records per fetch: the input reader's default batch size."""
FETCH_TIMEOUT_MS = 500
LINGER_MS = 2
"""The output writer's Kafka sink lingers as long."""
MAX_IN_FLIGHT = 4
"""The input reader's default."""

Pending = deque[tuple["asyncio.Future[list[Any]]", dict[TopicPartition, int]]]


async def pass_through(bootstrap: str, source: str, sink: str, group: str,
                       stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=LINGER_MS)
    await consumer.start()
    await producer.start()
    pending: Pending = deque()
    try:
        while not stop.is_set():
            while pending and (len(pending) >= MAX_IN_FLIGHT or pending[0][0].done()):
                await _commit_oldest(consumer, pending)
            await _forward_one_batch(consumer, producer, sink, pending)
        while pending:
            await _commit_oldest(consumer, pending)
    finally:
        await producer.stop()
        await consumer.stop()


async def _forward_one_batch(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                             sink: str, pending: Pending) -> None:
    timeout_ms = 5 if pending else FETCH_TIMEOUT_MS
    batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=BATCH_MAX_SIZE)
    if not batches:
        return
    deliveries = [await producer.send(sink, value=message.value, key=message.key)
                  for messages in batches.values() for message in messages]
    pending.append((asyncio.gather(*deliveries),
                    {tp: messages[-1].offset + 1 for tp, messages in batches.items()}))


async def _commit_oldest(consumer: AIOKafkaConsumer, pending: Pending) -> None:
    acknowledged, offsets = pending.popleft()
    await acknowledged
    await consumer.commit(offsets)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await pass_through(args.bootstrap, args.source, args.sink, args.group, stop)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("bootstrap")
    parser.add_argument("source")
    parser.add_argument("sink")
    parser.add_argument("group")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
