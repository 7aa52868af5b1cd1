"""The dead-letter record format, writing dead letters so they always fit, and replaying
them back to the input.

A dead letter keeps the reason, a short detail, the source coordinates, and the
original bytes (base64) with their length and sha256. Originals above a size limit
keep only their first bytes and are marked `truncated` (they cannot be replayed).
When the destination still refuses a letter, a minimal one (reason, coordinates,
length, digest) goes instead, so the coordinates are never lost.

Details never repeat the values that were refused: quoted values and anything the
structured recognizers take for personal data are replaced (`redact_detail`).

Sealed letters (a `Sealer` given): the original, and the record's key, are kept only
sealed (AES-256-GCM, agogosml.privacy.sealing) under the subject's key when the caller
knows the subject (its pseudonym, `Rejection.subject`) or else under the period key; the
letter names the key (`sealed: {key_id, scheme}`), carries the pseudonym, and has neither
a plain digest of the original (a guessable record would be confirmed by it) nor the
record's key. A subject whose key was shredded gets a letter without its original
(`original_discarded`). Replaying a sealed letter needs the same keys; one whose key was
shredded or destroyed is skipped and reported with that reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from agogosml.errors import InvalidRecordError, RecordTooLargeError
from agogosml.privacy.errors import PrivacyError
from agogosml.privacy.lineage.subjects import check_subject
from agogosml.privacy.recognizers import Span, StructuredAnalyzer, resolve
from agogosml.privacy.sealing import SCHEME, Sealer, SealingKey
from agogosml.privacy.subjectkeys import SubjectShreddedError
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
    subject: str | None = None
    """The record's subject pseudonym when the caller knows it: a sealed letter is sealed
    under the subject's key and carries the pseudonym."""


def short(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


# A quoted value as Python's repr (jsonschema's messages) or JSON writes it, escapes
# included; an opening quote inside a word ("can't") opens nothing. One left open at the
# end (a detail cut short) runs to the end.
_QUOTED = re.compile(r"""(?<![\w'"])(?:'(?:[^'\\\n]|\\.)*(?:'|$)|"(?:[^"\\\n]|\\.)*(?:"|$))""")
_LONG_NUMBER = re.compile(r"(?<![\w.])\d{8,}(?![\w.])")
_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})
_SCHEMA_SIDE = ("of type ", "does not match ")
"""A quoted text after these is the schema's (a type, a pattern), not the record's."""
_REQUIRED = " is a required property"
_ANALYZER = StructuredAnalyzer()
REDACTED = "'…'"
_ENTITY_MARGIN = 100
"""Longer than any entity the recognizers find (an IBAN with spaces is at most 42)."""


def _keep_quoted(text: str, match: re.Match[str]) -> bool:
    if any(text.endswith(side, 0, match.start()) for side in _SCHEMA_SIDE):
        return True
    if match.group()[1:-1] in _JSON_TYPES:
        return True
    # A required property is named by the schema, not by the record.
    return text.startswith(_REQUIRED, match.end())


def redact_detail(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text`, cut to `limit` characters, without the values it quotes (but the schema's
    types, patterns and required property names) and without what the structured
    recognizers take for personal data (emails, phones, IBANs, cards, SSNs, BSNs) or runs
    of 8+ digits. Free text naming a person without quotes cannot be told apart from a
    message: a detail is best-effort, the original itself is what sealing protects.

    Linear in the text: quotes are redacted in its first 64 times `limit` characters (a quote
    left open there runs to the end), the recognizers run only on what may be kept."""
    text = text[:limit * 64]
    pieces: list[str] = []
    cursor = 0
    for match in _QUOTED.finditer(text):
        if _keep_quoted(text, match):
            continue
        pieces += (text[cursor:match.start()], REDACTED)
        cursor = match.end()
    pieces.append(text[cursor:])
    # The recognizers see past the cut, so an entity across it is replaced whole, not left
    # as a fragment they would miss; nothing after the cut is kept.
    text = "".join(pieces)[:limit + _ENTITY_MARGIN]
    spans = resolve([*_ANALYZER.analyze(text),
                     *(Span(m.start(), m.end(), "NUMBER", 0.0)
                       for m in _LONG_NUMBER.finditer(text))])
    pieces, cursor = [], 0
    for span in spans:
        if span.start >= limit:
            break
        pieces += (text[cursor:span.start], f"<{span.entity}>")
        cursor = span.end
    pieces.append(text[cursor:max(cursor, limit)])
    return short("".join(pieces), limit)


def _detail(rejection: Rejection, limit: int = MAX_DETAIL_CHARS) -> str:
    return redact_detail(rejection.detail, limit)


def _subject(rejection: Rejection) -> str | None:
    """The pseudonym to seal under and put on the letter; None if there is none (or it is
    not something a subject key store could hold)."""
    try:
        return None if rejection.subject is None else check_subject(rejection.subject)
    except PrivacyError:
        return None


def _coordinates(record: SourceRecord) -> dict[str, Any]:
    position = record.position
    return {"stream": position.stream, "partition": position.partition,
            "offset": position.offset, "timestamp": record.timestamp_ms}


def _letter(rejection: Rejection, document: dict[str, Any], keep_key: bool = True) -> OutRecord:
    key = rejection.record.key if keep_key else None
    return OutRecord(value=orjson.dumps(document),
                     key=key if key is not None and len(key) <= MAX_KEY_BYTES else None,
                     headers=(("agogosml-reason", rejection.reason.encode()),))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dead_letter(rejection: Rejection, max_original_bytes: int,
                sealer: Sealer | None = None) -> OutRecord:
    """The letter for a rejection; with `sealer`, its original sealed (see the module's
    doc). Raises only if the sealer has no key at all to seal with (KeyUnavailableError)."""
    value = rejection.record.value
    kept = value[:max_original_bytes]
    document: dict[str, Any] = {
        "reason": rejection.reason,
        "detail": _detail(rejection),
        "source": _coordinates(rejection.record),
    }
    if sealer is None:
        document.update(original=_b64(kept), original_length=len(value),
                        original_sha256=hashlib.sha256(value).hexdigest(),
                        truncated=len(value) > max_original_bytes)
        document["dead_lettered_at"] = int(time.time() * 1000)
        return _letter(rejection, document)
    subject = _subject(rejection)
    if subject is not None:
        document["subject"] = subject
    document["original_length"] = len(value)
    try:
        key = sealer.key_for(subject)
    except SubjectShreddedError as error:
        document.update(truncated=True, original_discarded=str(error))
    else:
        document.update(original=_b64(key.seal(kept, "original")),
                        sealed={"key_id": key.key_id, "scheme": SCHEME},
                        truncated=len(value) > max_original_bytes)
        record_key = rejection.record.key
        if record_key is not None and len(record_key) <= MAX_KEY_BYTES:
            document["original_key"] = _b64(key.seal(record_key, "key"))
    document["dead_lettered_at"] = int(time.time() * 1000)
    return _letter(rejection, document, keep_key=False)


def minimal_dead_letter(rejection: Rejection, sealed: bool = False) -> OutRecord:
    """The letter of last resort: what happened and where, without the record (and, for
    a sealed letter's, without a digest of it)."""
    value = rejection.record.value
    document: dict[str, Any] = {
        "reason": rejection.reason,
        "detail": _detail(rejection, 200),
        "source": _coordinates(rejection.record),
        "original_length": len(value),
    }
    if sealed:
        subject = _subject(rejection)
        if subject is not None:
            document["subject"] = subject
    else:
        document["original_sha256"] = hashlib.sha256(value).hexdigest()
    document.update(truncated=True, minimal=True, dead_lettered_at=int(time.time() * 1000))
    return _letter(rejection, document, keep_key=not sealed)


@dataclass
class DeadLetterWriter:
    """Writes dead letters to `sink`, waiting out outages with backoff (until `giving_up`
    is set), and never failing on a letter the destination refuses as too large."""

    sink: Sink
    backoff: Backoff
    max_original_bytes: int = 256 * 1024
    sealer: Sealer | None = None
    """Seals originals (agogosml.privacy.sealing); None keeps them in clear (base64)."""
    _one_at_a_time: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Concurrent writes would share the producer's batches, and a letter resent alone
    because its batch was too large could be batched with others again."""

    async def write(self, rejections: Sequence[Rejection], giving_up: asyncio.Event) -> None:
        if self.sealer is None:
            letters = self._letters(rejections)
        else:  # a subject's key may come from its database: off the event loop
            letters = await asyncio.to_thread(self._letters, rejections)
        async with self._one_at_a_time:
            await self._write(rejections, letters, giving_up)

    def _letters(self, rejections: Sequence[Rejection]) -> list[OutRecord]:
        return [dead_letter(rejection, self.max_original_bytes, self.sealer)
                for rejection in rejections]

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
                await self._send([minimal_dead_letter(rejection, self.sealer is not None)],
                                 giving_up)
            except RecordTooLargeError:
                # Only a destination limit below a few hundred bytes gets here.
                log.error("dead letter refused even in its minimal form",
                          extra={"reason": rejection.reason,
                                 "source": str(rejection.record.position)})

    async def _send(self, letters: list[OutRecord], giving_up: asyncio.Event) -> None:
        await retry_until_done(lambda: self.sink.send(letters), self.backoff, giving_up,
                               what="writing dead letters")


def read_dead_letter(value: bytes, sealer: Sealer | None = None) -> dict[str, Any]:
    """The letter with its original in `original_bytes` (opened with `sealer`'s keys if it
    was sealed) and, for a sealed letter that had one, the record's key in
    `original_key_bytes`. InvalidRecordError("not_replayable") saying why otherwise: not a
    letter, truncated, discarded, sealed without the keys given, or its key shredded."""
    try:
        document = orjson.loads(value)
        if not isinstance(document, dict):
            raise TypeError("not a JSON object")
        if "original_discarded" in document:
            raise ValueError(f"the original was discarded: {document['original_discarded']}")
        if document.get("truncated"):
            raise ValueError("the original was truncated")
        original = base64.b64decode(document["original"], validate=True)
        sealed = document.get("sealed")
        if sealed is None:
            document["original_bytes"] = original
            return document
        key = _opening_key(sealed, sealer)
        document["original_bytes"] = key.open(original, "original")
        if document.get("original_key") is not None:
            document["original_key_bytes"] = key.open(
                base64.b64decode(document["original_key"], validate=True), "key")
    except PrivacyError as error:  # the key is gone, or the sealed bytes do not open
        raise InvalidRecordError("not_replayable", str(error)) from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as error:
        raise InvalidRecordError("not_replayable", f"{type(error).__name__}: {error}") from None
    return document


def _opening_key(sealed: object, sealer: Sealer | None) -> SealingKey:
    if not isinstance(sealed, dict) or not isinstance(sealed.get("key_id"), str):
        raise TypeError("`sealed` must name its key_id")
    if sealed.get("scheme") != SCHEME:
        raise ValueError(f"unknown sealing scheme {str(sealed.get('scheme'))[:40]!r}")
    key_id: str = sealed["key_id"]
    if sealer is None:
        raise ValueError(f"sealed under key {key_id[:64]!r}: replay with the sealing keys")
    return sealer.key_by_id(key_id)


@dataclass
class ReplayReport:
    replayed: int = 0
    filtered_out: int = 0
    skipped: list[str] = field(default_factory=list)
    """Coordinates and reason of each dead letter that could not be replayed."""


async def replay(source: Source, sink: Sink, limit: int | None = None,
                 idle_timeout_s: float = 5.0, batch_size: int = 500,
                 reasons: Collection[str] | None = None,
                 sealer: Sealer | None = None) -> ReplayReport:
    """Send dead letters' original bytes back to the input until none arrive for
    idle_timeout_s (or `limit` were replayed); commit each batch after the sink confirmed.

    With `reasons`, only letters with one of those reasons are replayed; the others are
    passed over (and committed, like every letter this consumer group has read). A letter
    that cannot be replayed (malformed, or its original truncated) is skipped and reported.
    Sealed letters are opened with `sealer`'s keys (the same period keyring and subject key
    store as the reader's); one whose key was shredded is skipped with that reason.
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
                letter = read_dead_letter(record.value, sealer)
            except InvalidRecordError as error:
                report.skipped.append(f"{record.position}: {error.detail}")
                continue
            if reasons is not None and letter.get("reason") not in reasons:
                report.filtered_out += 1
                continue
            outgoing.append(OutRecord(value=letter["original_bytes"],
                                      key=letter.get("original_key_bytes", record.key)))
        if outgoing:
            await sink.send(outgoing)
        last_done: dict[tuple[str, str], int] = {}
        for record in records:
            key = (record.position.stream, record.position.partition)
            last_done[key] = max(last_done.get(key, -1), record.position.offset)
        await source.commit(last_done)
        report.replayed += len(outgoing)
    return report
