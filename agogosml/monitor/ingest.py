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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from agogosml.envelope import ScoredEvent, is_plain_scored_event, loads
from agogosml.errors import BadRequestError, StoreUnavailableError
from agogosml.monitor.store.base import AsyncEventStore, unstorable
from agogosml.monitor.store.base import ScoredEvent as StoredEvent
from agogosml.retry import Backoff, retry_until_done
from agogosml.streaming.base import PartitionKey, Source, SourceRecord

log = logging.getLogger(__name__)

Item = TypeVar("Item")


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
    along when the scored event carries them. The common form is judged by exact types
    (`is_plain_scored_event`, as the writer's fast path does); anything else is checked
    field by field."""
    try:
        item = loads(record.value)
        if not is_plain_scored_event(item):
            ScoredEvent.from_json(item)
    except (ValueError, BadRequestError):
        return None
    model = item["model"]
    features = item.get("features")
    stored = StoredEvent(
        event_id=item["id"], subject=item.get("subject"), event_time_ms=item["time"],
        scored_at_ms=item["scored_at"], model_name=model["name"],
        model_version=model["version"], prediction=item["prediction"],
        scores=item["scores"], features=features if isinstance(features, dict) else {},
        ingested_at_ms=ingested_at_ms)
    return None if unstorable(stored) is not None else stored


def last_offsets(records: Sequence[SourceRecord]) -> Mapping[PartitionKey, int]:
    """Per partition, the last offset fetched: every record up to it is handled."""
    last: dict[PartitionKey, int] = {}
    for record in records:
        key = (record.position.stream, record.position.partition)
        last[key] = max(last.get(key, -1), record.position.offset)
    return last


class TopicIngestor(Generic[Item]):
    """Fetch a batch, write what parses (retrying while the store is down), then commit."""

    what = "records"

    def __init__(self, source: Source, backoff: Backoff, batch_max: int = 1_000,
                 fetch_timeout_s: float = 0.5) -> None:
        self.source = source
        self.backoff = backoff
        self.batch_max = batch_max
        self.fetch_timeout_s = fetch_timeout_s
        self.counts = IngestCounts()
        self._stopping = asyncio.Event()

    def parse(self, record: SourceRecord, now_ms: int) -> Item | None:
        """The item a record holds, or None to skip it (counted)."""
        raise NotImplementedError

    async def write(self, items: list[Item]) -> int:
        """Store the items; return how many were new. Any exception means "not stored"."""
        raise NotImplementedError

    def written(self, items: list[Item]) -> None:
        """Called once the store has taken `items` (before the commit)."""

    async def ingest_once(self) -> int:
        """Fetch one batch, store it (retrying while the store is down), then commit it;
        return how many records were fetched. Raises StoreUnavailableError only when
        stopping with a batch the store has not taken (it will be redelivered)."""
        records = await self.source.fetch(self.batch_max, self.fetch_timeout_s)
        if not records:
            return 0
        self.counts.fetched += len(records)
        now_ms = time.time_ns() // 1_000_000
        items = [item for record in records if (item := self.parse(record, now_ms)) is not None]
        self.counts.skipped += len(records) - len(items)
        if items:
            self.counts.stored += await retry_until_done(
                lambda: self._write(items), self.backoff, self._stopping,
                f"writing {self.what} to the store", self._count_failure)
            self.written(items)
        await self.source.commit(last_offsets(records))
        self.counts.commits += 1
        return len(records)

    async def _write(self, items: list[Item]) -> int:
        try:
            return await self.write(items)
        except Exception as error:  # any driver's error: the store is the boundary here
            raise StoreUnavailableError(f"store refused {len(items)} {self.what}: "
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
                    log.info("stopped with an unstored batch; it will be redelivered",
                             extra={"what": self.what})
                    return
                raise

    def stop(self) -> None:
        self._stopping.set()


class Ingestor(TopicIngestor[StoredEvent]):
    """The output topic's scored events into the store; `on_stored` sees each stored batch
    (the monitor's drift and live statistics)."""

    what = "scored events"

    def __init__(self, source: Source, store: AsyncEventStore, backoff: Backoff,
                 batch_max: int = 1_000, fetch_timeout_s: float = 0.5,
                 on_stored: Callable[[list[StoredEvent]], None] | None = None) -> None:
        super().__init__(source, backoff, batch_max, fetch_timeout_s)
        self.store = store
        self.on_stored = on_stored

    def parse(self, record: SourceRecord, now_ms: int) -> StoredEvent | None:
        return stored_event(record, now_ms)

    async def write(self, items: list[StoredEvent]) -> int:
        return await self.store.insert_events(items)

    def written(self, items: list[StoredEvent]) -> None:
        if self.on_stored is not None:
            self.on_stored(items)
