"""Committing offsets in order when batches finish out of order.

Batches are opened in fetch order. A batch's offsets may be committed only when
it and every batch opened before it are done; otherwise a crash could skip an
earlier batch that was still in flight.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from agogosml.streaming.base import PartitionKey, SourceRecord


class CommitTracker:
    def __init__(self) -> None:
        self._open: OrderedDict[int, dict[PartitionKey, int]] = OrderedDict()
        self._done: set[int] = set()
        self._next_id = 0

    def open(self, records: Sequence[SourceRecord]) -> int:
        last: dict[PartitionKey, int] = {}
        for record in records:
            key = (record.position.stream, record.position.partition)
            last[key] = max(last.get(key, -1), record.position.offset)
        batch_id = self._next_id
        self._next_id += 1
        self._open[batch_id] = last
        return batch_id

    def finish(self, batch_id: int) -> dict[PartitionKey, int]:
        """Mark a batch done; return the offsets that became committable (maybe none)."""
        self._done.add(batch_id)
        committable: dict[PartitionKey, int] = {}
        while self._open:
            oldest = next(iter(self._open))
            if oldest not in self._done:
                break
            self._done.discard(oldest)
            for key, offset in self._open.pop(oldest).items():
                committable[key] = max(committable.get(key, -1), offset)
        return committable

    @property
    def in_flight(self) -> int:
        return len(self._open)
