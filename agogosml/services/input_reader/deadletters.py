"""The dead-letter record format, and replaying dead letters back to the input.

A dead letter keeps the original bytes (base64), the reason, a human-readable
detail and the source coordinates, so nothing about the bad record is lost.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import orjson

from agogosml.errors import InvalidRecordError
from agogosml.streaming.base import OutRecord, Sink, Source, SourceRecord


def dead_letter(record: SourceRecord, reason: str, detail: str) -> OutRecord:
    position = record.position
    document = {
        "reason": reason,
        "detail": detail,
        "source": {"stream": position.stream, "partition": position.partition,
                   "offset": position.offset, "timestamp": record.timestamp_ms},
        "original": base64.b64encode(record.value).decode("ascii"),
        "dead_lettered_at": int(time.time() * 1000),
    }
    return OutRecord(value=orjson.dumps(document), key=record.key,
                     headers=(("agogosml-reason", reason.encode()),))


def read_dead_letter(value: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(value)
        document["original_bytes"] = base64.b64decode(document["original"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InvalidRecordError("not_a_dead_letter", type(error).__name__) from None
    if not isinstance(document, dict):
        raise InvalidRecordError("not_a_dead_letter", "not a JSON object")
    return document


async def replay(source: Source, sink: Sink, limit: int | None = None,
                 idle_timeout_s: float = 5.0, batch_size: int = 500) -> int:
    """Send dead letters' original bytes back to the input until none arrive for
    idle_timeout_s (or `limit` were replayed); commit each batch after the sink confirmed."""
    replayed = 0
    while limit is None or replayed < limit:
        wanted = batch_size if limit is None else min(batch_size, limit - replayed)
        records: Sequence[SourceRecord] = await source.fetch(wanted, idle_timeout_s)
        if not records:
            break
        outgoing = [OutRecord(value=read_dead_letter(r.value)["original_bytes"], key=r.key)
                    for r in records]
        await sink.send(outgoing)
        last_done: dict[tuple[str, str], int] = {}
        for record in records:
            key = (record.position.stream, record.position.partition)
            last_done[key] = max(last_done.get(key, -1), record.position.offset)
        await source.commit(last_done)
        replayed += len(records)
    return replayed
