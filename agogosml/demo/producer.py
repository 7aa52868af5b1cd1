"""The demo event producer: synthetic transactions into the input stream at a steady rate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from agogosml.demo.data import events
from agogosml.streaming.base import OutRecord, Sink

BATCH = 100


def _unique(pool: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """The pool's events again and again, with ids kept unique after the first round."""
    item = pool[number % len(pool)]
    cycle = number // len(pool)
    return item if cycle == 0 else dict(item, transaction_id=f"{item['transaction_id']}-{cycle}")


async def produce(sink: Sink, count: int, rate_per_s: float, seed: int = 11) -> int:
    """Send `count` events (0 = forever, cycling through a generated pool) at about
    `rate_per_s`; returns how many were sent."""
    pool = events(min(count, 50_000) if count else 50_000, seed)
    sent = 0
    started = time.monotonic()
    while count == 0 or sent < count:
        size = max(1, min(BATCH, int(rate_per_s / 10)))
        if count:
            size = min(size, count - sent)
        batch = [_unique(pool, sent + i) for i in range(size)]
        await sink.send([OutRecord(value=orjson.dumps(item)) for item in batch])
        sent += size
        ahead = sent / rate_per_s - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)  # pacing to the requested rate, not waiting on a condition
    return sent
