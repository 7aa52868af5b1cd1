"""The reader's main loop: fetch, validate, forward, dead-letter, commit.

Several batches may be in flight at once (up to max_in_flight); when that many
wait for the app, consumption pauses. Offsets are committed in fetch order and
only for batches whose every record was acknowledged by the app or accepted by
the dead-letter destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agogosml.envelope import ECHO_HEADER
from agogosml.errors import BadRequestError, DownstreamError, InvalidRecordError
from agogosml.retry import Backoff, retry_until_done
from agogosml.services.input_reader.commits import CommitTracker
from agogosml.services.input_reader.deadletters import dead_letter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.shadow import ShadowMirror
from agogosml.services.input_reader.transforms import RecordTransform, apply_transforms
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.base import OutRecord, Sink, Source, SourceRecord
from agogosml.web.client import BatchClient

log = logging.getLogger(__name__)

IDLE_FETCH_TIMEOUT_S = 0.5
LAG_REFRESH_S = 2.0


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_size: int = 500
    linger_s: float = 0.010
    max_in_flight: int = 4
    drain_timeout_s: float = 20.0


class InputReader:
    def __init__(self, source: Source, app: BatchClient, dead_letters: Sink,
                 validator: RecordValidator, metrics: ReaderMetrics, policy: BatchPolicy,
                 backoff: Backoff, transforms: Sequence[RecordTransform] = (),
                 shadow: ShadowMirror | None = None) -> None:
        self.source = source
        self.app = app
        self.dead_letters = dead_letters
        self.validator = validator
        self.metrics = metrics
        self.policy = policy
        self.backoff = backoff
        self.transforms = tuple(transforms)
        self.shadow = shadow
        self._tracker = CommitTracker()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._stop_fetching = asyncio.Event()
        self._abandon = asyncio.Event()
        self._lag_refreshed_at = 0.0
        self._loop: asyncio.Task[None] | None = None
        source.set_drain_hook(self.drain)

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="input-reader-loop")

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._loop.done()

    async def _run(self) -> None:
        while not self._stop_fetching.is_set():
            await self._refresh_lag()
            if self._tracker.in_flight >= self.policy.max_in_flight:
                await self._wait_for_slot()
                continue
            records = await self._collect_batch()
            if records:
                self._start_batch(records)

    async def stop(self) -> None:
        """Stop fetching, let in-flight batches finish within the drain timeout, commit."""
        self._stop_fetching.set()
        if self._loop is not None:
            await self._loop
        abandoned = 0
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.policy.drain_timeout_s)
            if pending:
                abandoned = len(pending)
                log.warning("giving up on unacknowledged batches; they will be redelivered",
                            extra={"batches": abandoned})
                self._abandon.set()
                await asyncio.wait(pending)
        log.info("reader drained", extra={"abandoned_batches": abandoned})

    async def drain(self) -> None:
        """Wait for every in-flight batch (used before partitions are revoked)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.policy.drain_timeout_s)

    def _start_batch(self, records: Sequence[SourceRecord]) -> None:
        batch_id = self._tracker.open(records)
        self.metrics.consumed.inc(len(records))
        self.metrics.in_flight.set(self._tracker.in_flight)
        task = asyncio.create_task(self._handle(batch_id, records))
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and (error := task.exception()) is not None \
                and not isinstance(error, DownstreamError):
            log.error("batch handling failed; it will be redelivered",
                      exc_info=(type(error), error, error.__traceback__))

    async def _wait_for_slot(self) -> None:
        self.source.pause()
        self.metrics.paused.set(1)
        self._slot_freed.clear()
        if self._tracker.in_flight >= self.policy.max_in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), IDLE_FETCH_TIMEOUT_S)
        # A fetch while paused returns nothing new but tells the group this consumer lives.
        stray = await self.source.fetch(self.policy.max_size, 0)
        if stray:  # fetched before the pause took effect: still ours to handle
            self._start_batch(stray)
        if self._tracker.in_flight < self.policy.max_in_flight:
            self.source.resume()
            self.metrics.paused.set(0)

    async def _collect_batch(self) -> list[SourceRecord]:
        records = list(await self.source.fetch(self.policy.max_size, IDLE_FETCH_TIMEOUT_S))
        deadline = time.monotonic() + self.policy.linger_s
        while records and len(records) < self.policy.max_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            records.extend(await self.source.fetch(self.policy.max_size - len(records), remaining))
        return records

    async def _handle(self, batch_id: int, records: Sequence[SourceRecord]) -> None:
        events: list[dict[str, Any]] = []
        by_id: dict[str, SourceRecord] = {}
        rejected: list[tuple[SourceRecord, str, str]] = []
        for record in records:
            try:
                event = apply_transforms(self.validator.to_event(record), self.transforms)
            except InvalidRecordError as error:
                rejected.append((record, error.reason, error.detail))
                continue
            events.append(event.to_json())
            by_id[event.id] = record
        if events:
            rejected.extend(await self._forward(events, by_id))
        if rejected:
            await self._dead_letter(rejected)
        await self._finish(batch_id)

    async def _forward(self, events: list[dict[str, Any]],
                       by_id: dict[str, SourceRecord]) -> list[tuple[SourceRecord, str, str]]:
        started = time.perf_counter()
        document = {"events": events}
        headers = {ECHO_HEADER: "predictions"} if self.shadow is not None else None
        try:
            answer = await retry_until_done(
                lambda: self.app.post(document, headers), self.backoff, self._abandon,
                what="forwarding to the app", on_failure=self.metrics.forward_failures.inc,
            )
        except BadRequestError as error:
            # The app refused the whole batch: keep every record, with the app's reason.
            return [(record, "rejected_by_app", str(error)) for record in by_id.values()]
        self.metrics.forward_latency.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(events))
        refused = answer.get("rejected", []) if isinstance(answer, dict) else []
        if self.shadow is not None and isinstance(answer, dict):
            self.shadow.offer(events, answer.get("predictions") or {})
        self.metrics.forwarded.inc(len(events) - len(refused))
        return [(by_id[item["id"]], "rejected_by_app", str(item.get("reason", "")))
                for item in refused if item.get("id") in by_id]

    async def _dead_letter(self, rejected: list[tuple[SourceRecord, str, str]]) -> None:
        letters: list[OutRecord] = [dead_letter(r, why, detail) for r, why, detail in rejected]
        await retry_until_done(lambda: self.dead_letters.send(letters), self.backoff,
                               self._abandon, what="writing dead letters")
        for _, reason, _ in rejected:
            self.metrics.dead_lettered.labels(reason=reason).inc()

    async def _finish(self, batch_id: int) -> None:
        async with self._commit_lock:
            committable = self._tracker.finish(batch_id)
            self.metrics.in_flight.set(self._tracker.in_flight)
            if not committable:
                return
            try:
                await self.source.commit(committable)
                self.metrics.commits.inc()
            except Exception:
                # The next commit carries these offsets too; until then they may be redelivered.
                self.metrics.commit_failures.inc()
                log.warning("offset commit failed", exc_info=True)

    async def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_refreshed_at < LAG_REFRESH_S:
            return
        self._lag_refreshed_at = now
        try:
            lags = await self.source.lag()
        except Exception:
            log.debug("could not read consumer lag", exc_info=True)
            return
        for (stream, partition), lag in lags.items():
            self.metrics.lag.labels(stream=stream, partition=partition).set(lag)
