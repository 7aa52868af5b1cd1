"""Mirroring a sample of traffic to a preview (challenger) app for shadow scoring.

Shadow traffic never slows or endangers production: mirrored batches are sent in
the background, at most `max_in_flight` at once; when that many are pending, the
sample is skipped (and counted). Its outcome never affects offset commits. The
sample is chosen by a hash of the event id, so the same events are mirrored on
every delivery and the champion's and challenger's outputs can be joined by id.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

from agogosml.envelope import SHADOW_HEADER, BatchRequest
from agogosml.errors import AgogosmlError
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.web.client import BatchClient

log = logging.getLogger(__name__)

BUCKETS = 10_000


def sampled(event_id: str, ratio: float) -> bool:
    return zlib.crc32(event_id.encode()) % BUCKETS < ratio * BUCKETS


class ShadowMirror:
    def __init__(self, client: BatchClient, ratio: float, metrics: ReaderMetrics,
                 max_in_flight: int = 2) -> None:
        self.client = client
        self.ratio = ratio
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()

    def offer(self, events: list[dict[str, Any]], production: dict[str, Any]) -> None:
        """Mirror the sampled events with production's predictions for them, so the
        preview app can report how often it agrees."""
        sample = [event for event in events if sampled(event["id"], self.ratio)]
        if not sample:
            return
        if len(self._tasks) >= self.max_in_flight:
            self.metrics.shadow_skipped.inc(len(sample))
            return
        reference = {event["id"]: production[event["id"]] for event in sample
                     if event["id"] in production}
        task = asyncio.create_task(self._send(sample, reference))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, sample: list[dict[str, Any]], reference: dict[str, Any]) -> None:
        try:
            await self.client.post(BatchRequest.encode_json(sample, reference),
                                   headers={SHADOW_HEADER: "1"})
        except AgogosmlError as error:
            self.metrics.shadow_failures.inc()
            log.debug("shadow batch failed", extra={"error": str(error)})
            return
        self.metrics.shadow_mirrored.inc(len(sample))

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self.client.aclose()
