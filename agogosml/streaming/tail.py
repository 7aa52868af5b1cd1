"""Printing a Kafka topic's records as they arrive, for people watching the pipeline."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer


async def tail(client_options: Mapping[str, Any], topic: str, from_beginning: bool,
               limit: int = 0) -> int:
    consumer = AIOKafkaConsumer(topic, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                **client_options)
    await consumer.start()
    printed = 0
    try:
        async for message in consumer:
            sys.stdout.write((message.value or b"").decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
            printed += 1
            if limit and printed >= limit:
                break
    finally:
        await consumer.stop()
    return printed
