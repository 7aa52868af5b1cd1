"""The interface every streaming technology implements.

A Source hands out raw records with their coordinates and, later, is told which
of them are done: `commit` receives, per partition, the last offset whose
record and every record before it have been fully handled. A Sink returns from
`send` only after the destination has durably accepted every record, and raises
SinkError otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record came from: a partition of a stream and an offset within it."""

    stream: str
    partition: str
    offset: int

    def __str__(self) -> str:
        return f"{self.stream}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    value: bytes
    position: Position
    timestamp_ms: int
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class OutRecord:
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)


PartitionKey = tuple[str, str]
"""(stream, partition) — the unit offsets are committed for."""

DrainHook = Callable[[], Awaitable[None]]
"""Called before a source gives partitions away, so acknowledged work can be committed."""


class Source(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_drain_hook(self, hook: DrainHook) -> None: ...

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        """Return up to max_records records, waiting at most timeout_s for the first one."""
        ...

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        """Record that every record up to and including these offsets is handled."""
        ...

    def pause(self) -> None:
        """Stop fetching new records (fetch keeps the connection alive and returns none)."""
        ...

    def resume(self) -> None: ...

    async def is_ready(self) -> bool: ...

    async def lag(self) -> Mapping[PartitionKey, int]:
        """Records not yet consumed, per partition, where the technology can tell."""
        ...


class Sink(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush what is pending, then close."""
        ...

    async def send(self, records: Sequence[OutRecord]) -> None:
        """Return once every record is durably accepted; raise SinkError otherwise."""
        ...

    async def is_ready(self) -> bool: ...
