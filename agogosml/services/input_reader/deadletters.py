"""The dead-letter record format, writing dead letters so they always fit, and replaying
them back to the input.

A dead letter keeps the reason, a short detail, the source coordinates, and the
original bytes (base64) with their length and sha256. Originals above a size limit
keep only their first bytes and are marked `truncated` (they cannot be replayed).
When the destination still refuses a letter, a minimal one (reason, coordinates,
length, digest) goes instead, so the coordinates are never lost.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from agogosml.errors import InvalidRecordError, RecordTooLargeError
from agogosml.retry import Backoff, retry_until_done
from agogosml.streaming.base import OutRecord, Sink, Source, SourceRecord

log = logging.getLogger(__name__)

MAX_DETAIL_CHARS = 1_000
MAX_KEY_BYTES = 1_024
"""Longer keys are not copied onto the letter (a key counts towards the broker's limit)."""


class Rejection(NamedTuple):
    """A record that goes to dead letters, and why."""

    record: SourceRecord
    reason: str
    detail: str


def short(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def _coordinates(record: SourceRecord) -> dict[str, Any]:
    position = record.position
    return {"stream": position.stream, "partition": position.partition,
            "offset": position.offset, "timestamp": record.timestamp_ms}


def _letter(rejection: Rejection, document: dict[str, Any]) -> OutRecord:
    key = rejection.record.key
    return OutRecord(value=orjson.dumps(document),
                     key=key if key is not None and len(key) <= MAX_KEY_BYTES else None,
                     headers=(("agogosml-reason", rejection.reason.encode()),))


def dead_letter(rejection: Rejection, max_original_bytes: int) -> OutRecord:
    value = rejection.record.value
    document = {
        "reason": rejection.reason,
        "detail": short(rejection.detail),
        "source": _coordinates(rejection.record),
        "original": base64.b64encode(value[:max_original_bytes]).decode("ascii"),
        "original_length": len(value),
        "original_sha256": hashlib.sha256(value).hexdigest(),
        "truncated": len(value) > max_original_bytes,
        "dead_lettered_at": int(time.time() * 1000),
    }
    return _letter(rejection, document)


def minimal_dead_letter(rejection: Rejection) -> OutRecord:
    """The letter of last resort: what happened and where, without the record."""
    value = rejection.record.value
    return _letter(rejection, {
        "reason": rejection.reason,
        "detail": short(rejection.detail, 200),
        "source": _coordinates(rejection.record),
        "original_length": len(value),
        "original_sha256": hashlib.sha256(value).hexdigest(),
        "truncated": True,
        "minimal": True,
        "dead_lettered_at": int(time.time() * 1000),
    })


@dataclass
class DeadLetterWriter:
    """Writes dead letters to `sink`, waiting out outages with backoff (until `giving_up`
    is set), and never failing on a letter the destination refuses as too large."""

    sink: Sink
    backoff: Backoff
    max_original_bytes: int = 256 * 1024
    _one_at_a_time: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Concurrent writes would share the producer's batches, and a letter resent alone
    because its batch was too large could be batched with others again."""

    async def write(self, rejections: Sequence[Rejection], giving_up: asyncio.Event) -> None:
        letters = [dead_letter(rejection, self.max_original_bytes) for rejection in rejections]
        async with self._one_at_a_time:
            await self._write(rejections, letters, giving_up)

    async def _write(self, rejections: Sequence[Rejection], letters: list[OutRecord],
                     giving_up: asyncio.Event) -> None:
        try:
            await self._send(letters, giving_up)
        except RecordTooLargeError as error:
            # The letters the sink accepted stay written; the refused ones (all of them if
            # the sink cannot tell) go again one by one.
            for index in error.refused or range(len(letters)):
                await self._one(rejections[index], letters[index], giving_up)

    async def _one(self, rejection: Rejection, letter: OutRecord,
                   giving_up: asyncio.Event) -> None:
        try:
            await self._send([letter], giving_up)
        except RecordTooLargeError:
            try:
                await self._send([minimal_dead_letter(rejection)], giving_up)
            except RecordTooLargeError:
                # Only a destination limit below a few hundred bytes gets here.
                log.error("dead letter refused even in its minimal form",
                          extra={"reason": rejection.reason,
                                 "source": str(rejection.record.position)})

    async def _send(self, letters: list[OutRecord], giving_up: asyncio.Event) -> None:
        await retry_until_done(lambda: self.sink.send(letters), self.backoff, giving_up,
                               what="writing dead letters")


def read_dead_letter(value: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(value)
        if not isinstance(document, dict):
            raise TypeError("not a JSON object")
        if document.get("truncated"):
            raise ValueError("the original was truncated")
        document["original_bytes"] = base64.b64decode(document["original"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InvalidRecordError("not_replayable", f"{type(error).__name__}: {error}") from None
    return document


@dataclass
class ReplayReport:
    replayed: int = 0
    filtered_out: int = 0
    skipped: list[str] = field(default_factory=list)
    """Coordinates and reason of each dead letter that could not be replayed."""


async def replay(source: Source, sink: Sink, limit: int | None = None,
                 idle_timeout_s: float = 5.0, batch_size: int = 500,
                 reasons: Collection[str] | None = None) -> ReplayReport:
    """Send dead letters' original bytes back to the input until none arrive for
    idle_timeout_s (or `limit` were replayed); commit each batch after the sink confirmed.

    With `reasons`, only letters with one of those reasons are replayed; the others are
    passed over (and committed, like every letter this consumer group has read). A letter
    that cannot be replayed (malformed, or its original truncated) is skipped and reported.
    """
    report = ReplayReport()
    while limit is None or report.replayed < limit:
        wanted = batch_size if limit is None else min(batch_size, limit - report.replayed)
        records: Sequence[SourceRecord] = await source.fetch(wanted, idle_timeout_s)
        if not records:
            break
        outgoing: list[OutRecord] = []
        for record in records:
            try:
                letter = read_dead_letter(record.value)
            except InvalidRecordError as error:
                report.skipped.append(f"{record.position}: {error.detail}")
                continue
            if reasons is not None and letter.get("reason") not in reasons:
                report.filtered_out += 1
                continue
            outgoing.append(OutRecord(value=letter["original_bytes"], key=record.key))
        if outgoing:
            await sink.send(outgoing)
        last_done: dict[tuple[str, str], int] = {}
        for record in records:
            key = (record.position.stream, record.position.partition)
            last_done[key] = max(last_done.get(key, -1), record.position.offset)
        await source.commit(last_done)
        report.replayed += len(outgoing)
    return report
