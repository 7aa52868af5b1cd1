"""The demo event producer: synthetic transactions into the input stream at a steady rate.

It rides out an outage of the destination: a batch the sink does not confirm is sent
again, with capped exponential backoff, until it is (the Kafka sink replaces its own
producer after a failed delivery). Afterwards it goes on at the
requested rate from where it is, instead of bursting to make up for the lost time:
these are synthetic events, so nothing waits to be caught up on, and a burst would
only show up downstream as a load spike the outage did not cause.

Two options show the monitor at work:
- `Drift`: after `after` events, one numeric feature is shifted by `sigmas` of its own
  standard deviation, so the drift detectors and the trigger rules have something to find.
- `Feedback`: each event's ground truth goes to a feedback sink `delay_s` later, as late
  labels would, so the monitor can show live performance.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from agogosml.demo.data import ID_FIELD, NUMERIC_FEATURES, labelled_events
from agogosml.retry import Backoff, retry_until_done
from agogosml.streaming.base import OutRecord, Sink

log = logging.getLogger(__name__)

BATCH = 100
RETRY = Backoff(initial_s=0.5, max_s=10.0)
MAX_BEHIND_S = 1.0
"""Further behind schedule than this (an outage, a slow sink), the pacing starts over."""


@dataclass(frozen=True)
class Drift:
    feature: str = "distance_from_home_km"
    sigmas: float = 1.0
    after: int = 0
    """Events sent unchanged before the shift starts."""

    def __post_init__(self) -> None:
        if self.feature not in NUMERIC_FEATURES:
            raise ValueError(f"can only shift a numeric feature: {', '.join(NUMERIC_FEATURES)}")


@dataclass(frozen=True)
class Feedback:
    sink: Sink
    delay_s: float = 5.0


class _Labels:
    """Labels waiting for their time to be sent."""

    def __init__(self, feedback: Feedback) -> None:
        self.feedback = feedback
        self.pending: deque[tuple[float, bytes]] = deque()

    def add(self, event_id: str, label: int) -> None:
        self.pending.append((time.monotonic() + self.feedback.delay_s,
                             orjson.dumps({"id": event_id, "label": label})))

    async def send_due(self, backoff: Backoff, giving_up: asyncio.Event,
                       everything: bool = False) -> None:
        now = float("inf") if everything else time.monotonic()
        due = []
        while self.pending and self.pending[0][0] <= now:
            due.append(OutRecord(value=self.pending.popleft()[1]))
        if due:
            await retry_until_done(functools.partial(self.feedback.sink.send, due), backoff,
                                   giving_up, "sending demo labels")


def _shifted(item: dict[str, Any], drift: Drift | None, number: int,
             sigma: float) -> dict[str, Any]:
    if drift is None or number < drift.after:
        return item
    original = item[drift.feature]
    value = original + drift.sigmas * sigma
    # Integer features stay integers: the input schema says so.
    return dict(item, **{drift.feature: round(value) if isinstance(original, int)
                         else round(value, 2)})


def _unique(pool: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """The pool's events again and again, with ids kept unique after the first round."""
    item = pool[number % len(pool)]
    cycle = number // len(pool)
    return item if cycle == 0 else dict(item, transaction_id=f"{item['transaction_id']}-{cycle}")


async def produce(sink: Sink, count: int, rate_per_s: float, seed: int = 11,
                  backoff: Backoff = RETRY, giving_up: asyncio.Event | None = None,
                  drift: Drift | None = None, feedback: Feedback | None = None) -> int:
    """Send `count` events (0 = forever, cycling through a generated pool) at about
    `rate_per_s`; returns how many were sent. A batch the sink refuses (SinkError) is
    retried until it goes through; once `giving_up` is set, the next failure raises."""
    pool, truths = labelled_events(min(count, 50_000) if count else 50_000, seed)
    sigma = _std([item[drift.feature] for item in pool]) if drift else 0.0
    labels = _Labels(feedback) if feedback else None
    giving_up = giving_up or asyncio.Event()
    sent = 0
    paced_from, paced_sent = time.monotonic(), 0
    while count == 0 or sent < count:
        size = max(1, min(BATCH, int(rate_per_s / 10)))
        if count:
            size = min(size, count - sent)
        items = [_shifted(_unique(pool, n), drift, n, sigma) for n in range(sent, sent + size)]
        records = [OutRecord(value=orjson.dumps(item)) for item in items]
        await retry_until_done(functools.partial(sink.send, records), backoff, giving_up,
                               "sending demo events")
        if labels is not None:
            for n, item in zip(range(sent, sent + size), items, strict=True):
                labels.add(item[ID_FIELD], truths[n % len(pool)])
            await labels.send_due(backoff, giving_up)
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
    if labels is not None:  # a bounded run ends with every label sent
        await labels.send_due(backoff, giving_up, everything=True)
    return sent


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5)
