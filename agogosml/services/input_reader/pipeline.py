"""The reader's main loop: fetch, validate, forward, dead-letter, commit.

Several batches may be in flight at once (up to max_in_flight); when that many
wait for the app, consumption pauses. Batching adapts to the load: a batch is sent as
soon as it is fetched while nothing is in flight, and lingers to fill (up to linger_s)
only while other batches are in flight. Offsets are committed in fetch order and
only for batches whose every record was acknowledged by the app or accepted by
the dead-letter destination.

Every record is accounted for. Turning a record into an event never fails the
batch: whatever goes wrong becomes that record's dead letter. The app's answer is
mapped back to records by position, so ids may repeat inside a batch. Failures to
forward:

- an outage (no answer, 502/503/504, 429): waited out with backoff, for as long as
  it lasts;
- a batch above the app's request limits (413): split in halves at once; a single
  record still too large is dead-lettered as `too_large_for_app`;
- the app failed on this batch (500, or an answer that breaks the batch contract):
  after `failure_budget` such failures the batch is split in halves, each delivered
  on its own, down to single records. A single record is dead-lettered as
  `app_error` only once the app has acknowledged other records since it began to
  fail; while the app acknowledges nothing, it is an outage and waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from agogosml.envelope import ECHO_HEADER, BatchAnswer, BatchRequest
from agogosml.errors import (
    BadRequestError,
    BatchFailedError,
    DownstreamError,
    InvalidRecordError,
    PayloadTooLargeError,
    StoreUnavailableError,
)
from agogosml.retry import Backoff, retry_until_done, wait_to_retry
from agogosml.services.input_reader.commits import CommitTracker
from agogosml.services.input_reader.deadletters import DeadLetterWriter, Rejection, short
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.shadow import ShadowMirror
from agogosml.services.input_reader.transforms import RecordTransform, apply_transforms
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.base import PartitionKey, Source, SourceRecord
from agogosml.web.client import BatchClient

log = logging.getLogger(__name__)

IDLE_FETCH_TIMEOUT_S = 0.5
LAG_REFRESH_S = 2.0
LINGER_SLICE_S = 0.002
"""While lingering, how long one fetch may wait before the reader looks again whether any
batch is still in flight (Kafka's fetch counts whole milliseconds)."""


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_size: int = 500
    linger_s: float = 0.010
    max_in_flight: int = 4
    drain_timeout_s: float = 20.0
    failure_budget: int = 3
    """Failures of one (sub)batch by the app (500s) before it is split in halves."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A record that became an event, waiting for the app's acknowledgement."""

    record: SourceRecord
    event: dict[str, Any]
    encoded: bytes


def _rejection(item: Pending, reason: str, detail: str) -> Rejection:
    """A record the app refused: its subject, a pseudonym by now, is on the event."""
    subject = item.event.get("subject")
    return Rejection(item.record, reason, detail, subject if isinstance(subject, str) else None)


class InputReader:
    def __init__(self, source: Source, app_client: BatchClient, dead_letters: DeadLetterWriter,
                 validator: RecordValidator, metrics: ReaderMetrics, policy: BatchPolicy,
                 backoff: Backoff, progress: ProgressWatch,
                 transforms: Sequence[RecordTransform] = (),
                 shadow: ShadowMirror | None = None,
                 subject_of: Callable[[bytes], str | None] = lambda value: None) -> None:
        self.source = source
        self.app_client = app_client
        self.dead_letters = dead_letters
        self.validator = validator
        self.metrics = metrics
        self.policy = policy
        self.backoff = backoff
        self.progress = progress
        self.transforms = tuple(transforms)
        self.subject_of = subject_of
        """The pseudonym of a refused record's subject, for its dead letter to be sealed
        under the subject's key (None: the period key)."""
        self.shadow = shadow
        self._tracker = CommitTracker()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._uncommitted: dict[PartitionKey, int] = {}
        self._paused = False
        self._stop_fetching = asyncio.Event()
        self._abandon = asyncio.Event()
        self._lag_refreshed_at = 0.0
        self._records_in_flight = 0
        self._last_ack = 0.0
        self._loop: asyncio.Task[None] | None = None
        source.set_drain_hook(self.drain)
        metrics.stalled.set_function(lambda: float(progress.readiness_problem() is not None))
        metrics.since_progress.set_function(progress.stalled_for)

    async def start(self) -> None:
        """Connect the dead-letter destination and the source, then start consuming."""
        await self.dead_letters.sink.start()
        await self.source.start()
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
            if self._paused:
                self.source.resume()
                self._paused = False
                self.metrics.paused.set(0)
            records = await self._collect_batch()
            if records:
                self._start_batch(records)

    async def stop(self) -> None:
        """Stop fetching, let in-flight batches finish within the drain timeout, commit,
        and close every client."""
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
        await self.source.stop()
        await self.dead_letters.sink.stop()
        await self.app_client.aclose()
        if self.shadow is not None:
            await self.shadow.close()

    async def drain(self) -> None:
        """Wait for every in-flight batch (used before partitions are revoked)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.policy.drain_timeout_s)

    def _start_batch(self, records: Sequence[SourceRecord]) -> None:
        batch_id = self._tracker.open(records)
        self._records_in_flight += len(records)
        self.metrics.consumed.inc(len(records))
        self.metrics.in_flight.set(self._tracker.in_flight)
        task = asyncio.create_task(self._handle(batch_id, records))
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
        if task.cancelled() or (error := task.exception()) is None:
            return
        if isinstance(error, DownstreamError) and self._abandon.is_set():
            return  # shutting down: the batch is redelivered
        # A bug: the batch stays uncommitted, the reader reports itself stalled, and
        # past the liveness limit it is restarted and the batch redelivered.
        log.error("batch handling failed; the batch stays uncommitted",
                  exc_info=(type(error), error, error.__traceback__))

    async def _wait_for_slot(self) -> None:
        """Wait until fewer than max_in_flight batches are in flight. Not fetching is
        backpressure enough for a short wait (every source buffers a bounded amount); a
        wait longer than IDLE_FETCH_TIMEOUT_S pauses the source, because a Kafka consumer
        must keep fetching to stay in its group. Pausing at every full window instead
        cost a Kafka consumer a pause, a fetch and a resume per batch."""
        self._slot_freed.clear()
        if self._tracker.in_flight >= self.policy.max_in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), IDLE_FETCH_TIMEOUT_S)
        if self._tracker.in_flight < self.policy.max_in_flight:
            return
        if not self._paused:
            self.source.pause()
            self._paused = True
            self.metrics.paused.set(1)
        # A fetch while paused returns nothing new but tells the group this consumer lives.
        stray = await self.source.fetch(self.policy.max_size, 0)
        if stray:  # fetched before the pause took effect: still ours to handle
            self._start_batch(stray)

    async def _collect_batch(self) -> list[SourceRecord]:
        """Up to max_size records, batched adaptively as Kafka's producer does: with no
        batch in flight, what the fetch returned is sent at once (a lone record pays no
        linger); while batches are in flight, the batch lingers up to linger_s to fill,
        and goes as soon as it is full or the last batch in flight is acknowledged."""
        records = list(await self.source.fetch(self.policy.max_size, IDLE_FETCH_TIMEOUT_S))
        deadline = time.monotonic() + self.policy.linger_s
        while records and len(records) < self.policy.max_size and self._tracker.in_flight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # In slices: a fetch is not to be cancelled (a source may lose what it was
            # reading), so the end of the last batch in flight is noticed between fetches.
            records.extend(await self.source.fetch(self.policy.max_size - len(records),
                                                   min(remaining, LINGER_SLICE_S)))
        return records

    async def _handle(self, batch_id: int, records: Sequence[SourceRecord]) -> None:
        if self.transforms:
            # A privacy stage may fetch a subject's key from its database: off the loop, and
            # retried while that database is down (the records are not to blame).
            pending, rejected = await retry_until_done(
                lambda: asyncio.to_thread(self._prepare, records), self.backoff, self._abandon,
                what="preparing a batch")
        else:
            pending, rejected = self._prepare(records)
        if pending:
            rejected.extend(await self._deliver(pending))
        if rejected:
            await self.dead_letters.write(rejected, self._abandon)
            for rejection in rejected:
                self.metrics.dead_lettered.labels(reason=rejection.reason).inc()
        self._records_in_flight -= len(records)
        await self._finish(batch_id)

    def _prepare(self, records: Sequence[SourceRecord]) -> tuple[list[Pending], list[Rejection]]:
        """Each record becomes an event ready to send, or a rejection; never an exception."""
        pending: list[Pending] = []
        rejected: list[Rejection] = []
        for record in records:
            try:
                event = apply_transforms(self.validator.to_event(record), self.transforms)
                document = event.to_json()
                pending.append(Pending(record, document, orjson.dumps(document)))
            except StoreUnavailableError:
                raise
            except InvalidRecordError as error:
                rejected.append(Rejection(record, error.reason, error.detail,
                                          self.subject_of(record.value)))
            except orjson.JSONEncodeError as error:
                rejected.append(Rejection(record, "unserializable", str(error),
                                          self.subject_of(record.value)))
            except Exception as error:
                rejected.append(Rejection(record, "internal_error",
                                          f"{type(error).__name__}: {short(str(error), 300)}",
                                          self.subject_of(record.value)))
        return pending, rejected

    async def _deliver(self, batch: list[Pending],
                       failing_since: float | None = None) -> list[Rejection]:
        """Forward until the app acknowledges; returns the records it refused or that
        failed it on their own. `failing_since`: when the batch this one was split from
        first failed. Raises DownstreamError only when shutting down."""
        started = time.perf_counter()
        failures = attempt = 0
        while True:
            try:
                refused = await self._post(batch)
            except PayloadTooLargeError as error:
                if len(batch) > 1:
                    break  # above the app's request limits: send it in halves
                return [_rejection(batch[0], "too_large_for_app", str(error))]
            except BadRequestError as error:
                # The app refused the whole batch: keep every record, with the app's reason.
                return [_rejection(item, "rejected_by_app", str(error)) for item in batch]
            except BatchFailedError as error:
                failures += 1
                failing_since = failing_since or time.monotonic()
                if failures >= self.policy.failure_budget:
                    if len(batch) > 1:
                        break
                    if self._last_ack > failing_since:
                        return [_rejection(batch[0], "app_error", str(error))]
                await self._after_failure(error, attempt)
            except DownstreamError as error:
                await self._after_failure(error, attempt)
            else:
                self.metrics.forward_latency.observe(time.perf_counter() - started)
                return [_rejection(batch[index], "rejected_by_app", reason)
                        for index, reason in refused.items()]
            attempt += 1
        self.metrics.batches_split.inc()
        middle = len(batch) // 2
        return [*await self._deliver(batch[:middle], failing_since),
                *await self._deliver(batch[middle:], failing_since)]

    async def _after_failure(self, error: DownstreamError, attempt: int) -> None:
        self.metrics.forward_failures.inc()
        await wait_to_retry(error, self.backoff, attempt, self._abandon, "forwarding to the app")

    async def _post(self, batch: list[Pending]) -> dict[int, str]:
        """One attempt: the app's refusals by position in `batch`."""
        body = BatchRequest.encode([item.encoded for item in batch])
        headers = {ECHO_HEADER: "predictions"} if self.shadow is not None else None
        answer = BatchAnswer.from_json(await self.app_client.post_encoded(body, headers),
                                       [item.event["id"] for item in batch])
        if answer is None:
            raise BatchFailedError("the app's answer does not follow the batch contract")
        refused = {refusal.index: short(refusal.reason) for refusal in answer.rejected}
        self._last_ack = time.monotonic()
        self.metrics.batch_size.observe(len(batch))
        self.metrics.forwarded.inc(len(batch) - len(refused))
        if self.shadow is not None:
            self.shadow.offer([item.event for item in batch], answer.predictions or {})
        return refused

    async def _finish(self, batch_id: int) -> None:
        """The batch's slot is freed at once; its offsets join those waiting to be committed.
        Commits are coalesced: while one is under way, the batches finishing meanwhile
        wait for it and then go in a single commit, so small batches do not queue one
        commit round trip each."""
        for key, offset in self._tracker.finish(batch_id).items():
            self._uncommitted[key] = max(self._uncommitted.get(key, -1), offset)
        self.metrics.in_flight.set(self._tracker.in_flight)
        self._slot_freed.set()
        async with self._commit_lock:
            if not self._uncommitted:
                return  # committed by a batch that finished later
            offsets, self._uncommitted = self._uncommitted, {}
            try:
                await self.source.commit(offsets)
                self.metrics.commits.inc()
                self.progress.committed()
            except Exception:
                # The next commit carries these offsets too; until then they may be redelivered.
                for key, offset in offsets.items():
                    self._uncommitted[key] = max(self._uncommitted.get(key, -1), offset)
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
            lags = {}
        for (stream, partition), lag in lags.items():
            self.metrics.lag.labels(stream=stream, partition=partition).set(lag)
        self.progress.observe(sum(lags.values()) + self._records_in_flight)
