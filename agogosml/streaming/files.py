"""JSON-lines files as source and sink: the embedded default, no broker needed.

The source follows its file like `tail -f`; a record's offset is the byte
position just past its line, and commits write that position atomically to a
checkpoint file beside the input, so a restart resumes after the last commit.
The sink appends and fsyncs before `send` returns.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from agogosml.errors import SinkError
from agogosml.streaming.base import DrainHook, OutRecord, PartitionKey, Position, SourceRecord

POLL_INTERVAL_S = 0.05
PARTITION = "0"


class JsonLinesSource:
    def __init__(self, path: Path, checkpoint_path: Path | None = None) -> None:
        self.path = path
        self.checkpoint_path = checkpoint_path or path.with_name(path.name + ".offset")
        self._read_offset = 0
        self._paused = False

    def set_drain_hook(self, hook: DrainHook) -> None:
        """Files have no partitions to lose: nothing to drain before a rebalance."""

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        if self.checkpoint_path.exists():
            self._read_offset = int(self.checkpoint_path.read_text().strip() or 0)

    async def stop(self) -> None:
        return None

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        deadline = time.monotonic() + timeout_s
        while True:
            records = [] if self._paused else await asyncio.to_thread(self._read, max_records)
            if records or time.monotonic() >= deadline:
                return records
            await asyncio.sleep(POLL_INTERVAL_S)

    def _read(self, max_records: int) -> list[SourceRecord]:
        records: list[SourceRecord] = []
        now_ms = int(time.time() * 1000)
        with self.path.open("rb") as handle:
            handle.seek(self._read_offset)
            while len(records) < max_records:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break  # nothing more, or a line still being written
                self._read_offset += len(line)
                if not line.strip():
                    continue
                records.append(SourceRecord(
                    value=line.rstrip(b"\r\n"), timestamp_ms=now_ms,
                    position=Position(str(self.path), PARTITION, self._read_offset),
                ))
        return records

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        offset = last_done.get((str(self.path), PARTITION))
        if offset is not None:
            await asyncio.to_thread(_write_atomically, self.checkpoint_path, str(offset))

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    async def is_ready(self) -> bool:
        return self.path.exists()

    async def lag(self) -> Mapping[PartitionKey, int]:
        size = self.path.stat().st_size if self.path.exists() else 0
        return {(str(self.path), PARTITION): max(0, size - self._read_offset)}


class JsonLinesSink:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        return None

    async def send(self, records: Sequence[OutRecord]) -> None:
        data = b"".join(record.value + b"\n" for record in records)
        try:
            await asyncio.to_thread(_append_durably, self.path, data)
        except OSError as error:
            raise SinkError(f"could not append to {self.path}: {error.strerror}") from error

    async def is_ready(self) -> bool:
        return self.path.parent.is_dir()


def _append_durably(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
