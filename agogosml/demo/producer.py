"""The demo event producer: synthetic transactions into the input stream at a steady rate.

It rides out an outage of the destination: a batch the sink does not confirm is sent
again, with capped exponential backoff, until it is (the Kafka sink replaces its own
producer after a failed delivery). Afterwards it goes on at the
requested rate from where it is, instead of bursting to make up for the lost time:
these are synthetic events, so nothing waits to be caught up on, and a burst would
only show up downstream as a load spike the outage did not cause.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import orjson

from agogosml.demo.data import events
from agogosml.retry import Backoff, retry_until_done
from agogosml.streaming.base import OutRecord, Sink

log = logging.getLogger(__name__)

BATCH = 100
RETRY = Backoff(initial_s=0.5, max_s=10.0)
MAX_BEHIND_S = 1.0
"""Further behind schedule than this (an outage, a slow sink), the pacing starts over."""


def _unique(pool: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """The pool's events again and again, with ids kept unique after the first round."""
    item = pool[number % len(pool)]
    cycle = number // len(pool)
    return item if cycle == 0 else dict(item, transaction_id=f"{item['transaction_id']}-{cycle}")


async def produce(sink: Sink, count: int, rate_per_s: float, seed: int = 11,
                  backoff: Backoff = RETRY, giving_up: asyncio.Event | None = None) -> int:
    """Send `count` events (0 = forever, cycling through a generated pool) at about
    `rate_per_s`; returns how many were sent. A batch the sink refuses (SinkError) is
    retried until it goes through; once `giving_up` is set, the next failure raises."""
    pool = events(min(count, 50_000) if count else 50_000, seed)
    giving_up = giving_up or asyncio.Event()
    sent = 0
    paced_from, paced_sent = time.monotonic(), 0
    while count == 0 or sent < count:
        size = max(1, min(BATCH, int(rate_per_s / 10)))
        if count:
            size = min(size, count - sent)
        records = [OutRecord(value=orjson.dumps(_unique(pool, sent + i))) for i in range(size)]
        await retry_until_done(functools.partial(sink.send, records), backoff, giving_up,
                               "sending demo events")
        sent += size
        ahead = (sent - paced_sent) / rate_per_s - (time.monotonic() - paced_from)
        if ahead < -MAX_BEHIND_S:
            log.info("resuming the demo rate", extra={"behind_s": round(-ahead, 1),
                                                      "rate_per_s": rate_per_s, "sent": sent})
            # The batch just sent opens a new schedule at the same rate.
            paced_from, paced_sent = time.monotonic(), sent - size
            ahead = size / rate_per_s
        if ahead > 0:
            await asyncio.sleep(ahead)  # pacing to the requested rate, not waiting on a condition
    return sent
