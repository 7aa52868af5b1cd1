"""The baseline: a raw Kafka pass-through with the pipeline's delivery semantics.

A consumer group member reads the input topic, produces every record unchanged to
the output topic with an idempotent acks=all producer, and commits the offsets of
a batch only after every record of it was acknowledged (at least once). No HTTP,
no validation, no model: what the broker and aiokafka alone cost.

Run as a child process so it gets its own core, like each pipeline service:

    python -m bench.passthrough BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

BATCH_MAX_SIZE = 500
"""Records per fetch: the input reader's default batch size."""
FETCH_TIMEOUT_MS = 500
LINGER_MS = 2
"""The output writer's Kafka sink lingers as long."""


async def pass_through(bootstrap: str, source: str, sink: str, group: str,
                       stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=LINGER_MS)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            await _forward_one_batch(consumer, producer, sink)
    finally:
        await producer.stop()
        await consumer.stop()


async def _forward_one_batch(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                             sink: str) -> None:
    batches = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=BATCH_MAX_SIZE)
    if not batches:
        return
    deliveries = [await producer.send(sink, value=message.value, key=message.key)
                  for messages in batches.values() for message in messages]
    await asyncio.gather(*deliveries)
    await consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batches.items()})


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
