"""From the output topic into the event store, committed only after the store took it.

The output topic stays the source of truth: offsets are committed only once the store has
confirmed the events fetched with them, so a store that is briefly down costs a delay and
a redelivery, never an event (the store is idempotent on event id and model version, so a
redelivery is counted once). A record that is not a scored event is skipped and counted,
so nothing on the topic can stop ingestion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agogosml.envelope import ScoredEvent, loads
from agogosml.errors import BadRequestError, DownstreamError
from agogosml.monitor.store.base import AsyncEventStore, unstorable
from agogosml.monitor.store.base import ScoredEvent as StoredEvent
from agogosml.retry import Backoff, retry_until_done
from agogosml.streaming.base import PartitionKey, Source, SourceRecord

log = logging.getLogger(__name__)


class StoreUnavailableError(DownstreamError):
    """The event store did not take a batch; it is retried and nothing is committed."""


@dataclass
class IngestCounts:
    """What ingestion did so far (the monitor service turns these into metrics)."""

    fetched: int = 0
    stored: int = 0
    skipped: int = 0
    store_failures: int = 0
    commits: int = 0


def stored_event(record: SourceRecord, ingested_at_ms: int) -> StoredEvent | None:
    """The store's row for a record of the output topic; None when it is not a scored
    event, or one no store can hold (it would be retried for ever). Input features ride
    along when the scored event carries them."""
    try:
        item = loads(record.value)
        event = ScoredEvent.from_json(item)
    except (ValueError, BadRequestError):
        return None
    features = item.get("features")
    stored = StoredEvent(
        event_id=event.id, subject=event.subject, event_time_ms=event.time_ms,
        scored_at_ms=event.scored_at_ms, model_name=event.model.name,
        model_version=event.model.version, prediction=event.prediction,
        scores=dict(event.scores), features=features if isinstance(features, dict) else {},
        ingested_at_ms=ingested_at_ms)
    return None if unstorable(stored) is not None else stored


def last_offsets(records: Sequence[SourceRecord]) -> Mapping[PartitionKey, int]:
    """Per partition, the last offset fetched: every record up to it is handled."""
    last: dict[PartitionKey, int] = {}
    for record in records:
        key = (record.position.stream, record.position.partition)
        last[key] = max(last.get(key, -1), record.position.offset)
    return last


class Ingestor:
    def __init__(self, source: Source, store: AsyncEventStore, backoff: Backoff,
                 batch_max: int = 1_000, fetch_timeout_s: float = 0.5) -> None:
        self.source = source
        self.store = store
        self.backoff = backoff
        self.batch_max = batch_max
        self.fetch_timeout_s = fetch_timeout_s
        self.counts = IngestCounts()
        self._stopping = asyncio.Event()

    async def ingest_once(self) -> int:
        """Fetch one batch, store it (retrying while the store is down), then commit it;
        return how many records were fetched. Raises StoreUnavailableError only when
        stopping with a batch the store has not taken (it will be redelivered)."""
        records = await self.source.fetch(self.batch_max, self.fetch_timeout_s)
        if not records:
            return 0
        self.counts.fetched += len(records)
        now_ms = time.time_ns() // 1_000_000
        events = [event for record in records
                  if (event := stored_event(record, now_ms)) is not None]
        self.counts.skipped += len(records) - len(events)
        if events:
            self.counts.stored += await retry_until_done(
                lambda: self._insert(events), self.backoff, self._stopping,
                "writing scored events to the store", self._count_failure)
        await self.source.commit(last_offsets(records))
        self.counts.commits += 1
        return len(records)

    async def _insert(self, events: list[StoredEvent]) -> int:
        try:
            return await self.store.insert_events(events)
        except Exception as error:  # any driver's error: the store is the boundary here
            raise StoreUnavailableError(f"store refused {len(events)} events: "
                                        f"{type(error).__name__}") from error

    def _count_failure(self) -> None:
        self.counts.store_failures += 1

    async def run(self) -> None:
        """Ingest until `stop` is called."""
        while not self._stopping.is_set():
            try:
                await self.ingest_once()
            except StoreUnavailableError:
                if self._stopping.is_set():
                    log.info("stopped with an unstored batch; it will be redelivered")
                    return
                raise

    def stop(self) -> None:
        self._stopping.set()
