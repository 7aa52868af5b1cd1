"""Sealed dead letters: with a sealer the original is kept only encrypted (under the
subject's key when the caller knows the subject, else the period key), details never repeat
the values refused, and replay opens letters with the same keys, skipping with a reason
those whose key was shredded or destroyed. PII canaries in invalid records never reach the
letter's bytes."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from agogosml.errors import InvalidRecordError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.sealing import SCHEME, Sealer
from agogosml.privacy.subjectkeys import SubjectKeyStore, sqlite_subject_keys, subject_key_id
from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import (
    MAX_DETAIL_CHARS,
    DeadLetterWriter,
    Rejection,
    dead_letter,
    minimal_dead_letter,
    read_dead_letter,
    redact_detail,
    replay,
)
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.base import Position, SourceRecord
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource
from tests.privacy import ids

RNG = random.Random(11)
EMAIL = "zelda.canary@example.com"
NAME = "Zelda Canarywoman"
PHONE = "+31 6 4711 0815"
IBAN = ids.iban(RNG, "NL")
CARD = ids.card(RNG)
SSN = ids.ssn(RNG)
BSN = ids.bsn(RNG)
CANARIES = (EMAIL, NAME, PHONE, IBAN, CARD, SSN, BSN)


def variants(canary: str) -> set[bytes]:
    """The canary as written, without separators, and its parts that identify on their own."""
    compact = canary.replace(" ", "").replace("-", "")
    found = {canary, compact, canary.lower(), canary.split("@")[0]}
    found |= {part for part in canary.split() if len(part) >= 6}
    return {text.encode() for text in found}


def assert_no_canary(blob: bytes) -> None:
    for canary in CANARIES:
        for variant in variants(canary):
            assert variant not in blob, f"{variant!r} leaked"


SCHEMA = {
    "type": "object",
    "required": ["id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "customer_id": {"type": "string"},
        "amount": {"type": "number"},
        "email": {"type": "string", "pattern": "^[a-z]+@shop\\.example$"},
        "name": {"type": "string", "maxLength": 5},
        "country": {"enum": ["NL", "DE"]},
        "ssn": {"type": "string", "const": "n/a"},
        "profile": {"type": "object", "maxProperties": 1},
        "tags": {"type": "array", "maxItems": 1},
        "account": {"type": "string"},
    },
}

INVALID = [
    {"id": "1", "amount": NAME},
    {"id": "2", "email": EMAIL},
    {"id": "3", "name": NAME},
    {"id": "4", "country": IBAN},
    {"id": "5", "ssn": SSN},
    {"id": "6", "profile": {"name": NAME, "phone": PHONE, "card": CARD}},
    {"id": "7", "tags": [EMAIL, PHONE]},
    {"id": "8", EMAIL: NAME},
    {"id": "9", "account": int(BSN)},
    {"id": 10, "customer_id": CARD, "name": NAME},
    {"customer_id": EMAIL, "name": NAME},
]
NOT_JSON = [f'{{"name": "{NAME}", "email": {EMAIL}}}'.encode(),
            f"[{PHONE!r}, {IBAN!r}]".encode(), f'"{EMAIL}"'.encode()]
FREE_TEXT_DETAILS = [  # what an app, or an exception, may say about a record
    f"customer {EMAIL} with card {CARD} is blocked",
    f"ValueError: cannot score {IBAN} / {PHONE} / ssn {SSN}",
    f"name {NAME!r} is on a sanctions list",
    f'the app refused "{NAME}" (bsn {BSN})',
]


def source_record(value: bytes, offset: int = 0, key: bytes | None = None) -> SourceRecord:
    return SourceRecord(value, Position("in", "0", offset), 0, key=key)


@pytest.fixture
def period() -> Keyring:
    return Keyring(encryption_keys={"2026-12": os.urandom(32)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SubjectKeyStore]:
    kek = Keyring(encryption_keys={"kek-1": os.urandom(32)})
    with sqlite_subject_keys(tmp_path / "keys.db", kek, cache_ttl_s=0) as opened:
        yield opened


@pytest.fixture
def sealer(period: Keyring, store: SubjectKeyStore) -> Sealer:
    return Sealer(period, store)


def rejections() -> list[Rejection]:
    validator = RecordValidator(SCHEMA, 1_000_000, "id", "customer_id", None)
    refused: list[Rejection] = []
    values = [orjson.dumps(record) for record in INVALID] + NOT_JSON
    for offset, value in enumerate(values):
        with pytest.raises(InvalidRecordError) as error:
            validator.to_event(source_record(value, offset))
        refused.append(Rejection(source_record(value, offset, key=EMAIL.encode()),
                                 error.value.reason, error.value.detail,
                                 subject="ps_zelda" if offset % 2 else None))
    for offset, detail in enumerate(FREE_TEXT_DETAILS, start=len(values)):
        value = orjson.dumps({"id": str(offset), "email": EMAIL, "name": NAME})
        refused.append(Rejection(source_record(value, offset, key=PHONE.encode()),
                                 "rejected_by_app", detail, subject="ps_zelda"))
    return refused


def test_no_canary_reaches_a_sealed_letter_and_every_letter_opens_again(
        sealer: Sealer) -> None:
    for rejection in rejections():
        for letter in (dead_letter(rejection, 1_000_000, sealer),
                       minimal_dead_letter(rejection, sealed=True)):
            assert_no_canary(letter.value)
            assert letter.key is None, "the record's key may be personal: sealed too"
            assert_no_canary(b"".join(value for _, value in letter.headers))
            document = orjson.loads(letter.value)
            assert "original_sha256" not in document, "a digest confirms a guessed record"
            assert_no_canary(document["detail"].encode())
        opened = read_dead_letter(dead_letter(rejection, 1_000_000, sealer).value, sealer)
        assert opened["original_bytes"] == rejection.record.value
        assert opened["original_key_bytes"] == rejection.record.key


def test_details_keep_what_explains_the_refusal() -> None:
    details = {rejection.record.position.offset: redact_detail(rejection.detail)
               for rejection in rejections()}
    assert details[0] == "amount: '…' is not of type 'number'"
    assert details[1] == "email: '…' does not match '^[a-z]+@shop\\\\.example$'"
    assert details[5] == "profile: {'…': '…', '…': '…', '…': '…'} has too many properties"
    assert details[7] == "(record): Additional properties are not allowed ('…' was unexpected)"
    assert details[8] == "account: <NL_BSN> is not of type 'string'"
    assert details[10] == "(record): 'id' is a required property"
    assert details[14] == "customer <EMAIL> with card <CREDIT_CARD> is blocked"
    assert redact_detail("amount: not a number") == "amount: not a number"
    assert redact_detail("the model can't score it, it isn't ready") == (
        "the model can't score it, it isn't ready")
    assert redact_detail("2000000 bytes, the limit is 1048576") == (
        "2000000 bytes, the limit is 1048576")


def test_unsealed_letters_stay_as_they_were_but_their_details_are_redacted() -> None:
    for rejection in rejections():
        letter = dead_letter(rejection, 1_000_000)
        document = orjson.loads(letter.value)
        assert_no_canary(document["detail"].encode())
        assert "sealed" not in document
        assert "subject" not in document
        assert letter.key == rejection.record.key
        assert read_dead_letter(letter.value)["original_bytes"] == rejection.record.value


def test_a_sealed_letter_names_its_key_and_its_subject(
        sealer: Sealer, period: Keyring) -> None:
    value = orjson.dumps({"email": EMAIL})
    known = orjson.loads(dead_letter(Rejection(source_record(value), "r", "d", "ps_zelda"),
                                     1_000, sealer).value)
    assert known["sealed"] == {"key_id": subject_key_id("ps_zelda"), "scheme": SCHEME}
    assert known["subject"] == "ps_zelda"
    assert known["original_length"] == len(value)
    assert known["truncated"] is False
    unknown = orjson.loads(dead_letter(Rejection(source_record(value), "r", "d"), 1_000,
                                       sealer).value)
    assert unknown["sealed"] == {"key_id": "2026-12", "scheme": SCHEME}
    assert "subject" not in unknown
    hostile = orjson.loads(dead_letter(Rejection(source_record(value), "r", "d", "\x00x"),
                                       1_000, sealer).value)
    assert hostile["sealed"]["key_id"] == "2026-12", "a subject no store holds: period key"
    assert "subject" not in hostile
    truncated = dead_letter(Rejection(source_record(value), "r", "d"), 5, sealer)
    assert orjson.loads(truncated.value)["truncated"] is True
    with pytest.raises(InvalidRecordError, match="truncated"):
        read_dead_letter(truncated.value, sealer)


def test_sealed_letters_do_not_open_without_their_keys(sealer: Sealer) -> None:
    letter = dead_letter(Rejection(source_record(b'{"a": 1}'), "r", "d", "ps_zelda"),
                         1_000, sealer)
    with pytest.raises(InvalidRecordError, match="replay with the sealing keys"):
        read_dead_letter(letter.value)
    other = Sealer(Keyring(encryption_keys={"2026-12": os.urandom(32)}))
    with pytest.raises(InvalidRecordError, match="no subject key store"):
        read_dead_letter(letter.value, other)
    document = orjson.loads(letter.value)
    document["sealed"]["key_id"] = "2026-12"
    with pytest.raises(InvalidRecordError, match="failed authentication"):
        read_dead_letter(orjson.dumps(document), sealer)
    document["sealed"]["scheme"] = "rot13"
    with pytest.raises(InvalidRecordError, match="unknown sealing scheme"):
        read_dead_letter(orjson.dumps(document), sealer)


def test_a_shredded_subjects_new_letters_keep_no_original(
        sealer: Sealer, store: SubjectKeyStore) -> None:
    store.shred("ps_zelda")
    letter = dead_letter(Rejection(source_record(orjson.dumps({"email": EMAIL})), "r", "d",
                                   "ps_zelda"), 1_000, sealer)
    document = orjson.loads(letter.value)
    assert "original" not in document
    assert document["original_discarded"] == (
        f"key for subject {subject_key_id('ps_zelda')} was shredded")
    assert_no_canary(letter.value)
    with pytest.raises(InvalidRecordError, match=r"discarded: key for subject .* shredded"):
        read_dead_letter(letter.value, sealer)


async def test_replay_opens_sealed_letters_and_skips_shredded_ones(
        tmp_path: Path, sealer: Sealer, store: SubjectKeyStore, period: Keyring) -> None:
    letters = tmp_path / "dead.jsonl"
    writer = DeadLetterWriter(JsonLinesSink(letters), Backoff(0.01, 0.05), 1_000, sealer)
    await writer.sink.start()
    originals = {subject: orjson.dumps({"email": EMAIL, "who": subject})
                 for subject in ("ps_zelda", "ps_yann", None)}
    await writer.write([Rejection(source_record(value, n), "app_error", f"refused {EMAIL}",
                                  subject)
                        for n, (subject, value) in enumerate(originals.items())],
                       asyncio.Event())
    assert_no_canary(letters.read_bytes())
    store.shred("ps_zelda")

    source, target = JsonLinesSource(letters), JsonLinesSink(tmp_path / "input.jsonl")
    await source.start()
    report = await replay(source, target, idle_timeout_s=0.1, sealer=sealer)
    assert report.replayed == 2
    [skipped] = report.skipped
    assert skipped.endswith(f"key for subject {subject_key_id('ps_zelda')} was shredded")
    assert (tmp_path / "input.jsonl").read_bytes().splitlines() == [
        originals["ps_yann"], originals[None]]


async def test_destroying_the_period_key_shreds_that_periods_letters(
        tmp_path: Path, sealer: Sealer, period: Keyring) -> None:
    letters = tmp_path / "dead.jsonl"
    sink = JsonLinesSink(letters)
    await sink.start()
    await sink.send([dead_letter(Rejection(source_record(b'{"a": 1}'), "r", "d"), 1_000,
                                 sealer)])
    period.destroy("2026-12")
    source = JsonLinesSource(letters)
    await source.start()
    report = await replay(source, JsonLinesSink(tmp_path / "in.jsonl"), idle_timeout_s=0.1,
                          sealer=sealer)
    assert report.replayed == 0
    assert report.skipped[0].endswith("encryption key '2026-12' was destroyed")


def test_a_sealed_letter_carries_the_record_key_sealed(sealer: Sealer) -> None:
    letter = dead_letter(Rejection(source_record(b"{}", key=EMAIL.encode()), "r", "d"),
                         1_000, sealer)
    sealed_key = base64.b64decode(orjson.loads(letter.value)["original_key"])
    assert EMAIL.encode() not in sealed_key
    assert read_dead_letter(letter.value, sealer)["original_key_bytes"] == EMAIL.encode()


def test_a_huge_detail_is_redacted_quickly_and_whole() -> None:
    numbers = ", ".join(str(4_000_000_000 + n) for n in range(100_000))  # 1.2 MB
    started = time.perf_counter()
    detail = redact_detail(f"tags: [{numbers}] is too long")
    assert time.perf_counter() - started < 2
    assert detail.startswith("tags: [<PHONE>, <PHONE>, ")
    assert detail.endswith("<PHONE>")
    assert len(detail) <= MAX_DETAIL_CHARS
    assert not re.search(r"\d", detail)
    # An entity across the cut is redacted before the cut, not left as a fragment.
    for at in range(MAX_DETAIL_CHARS - 40, MAX_DETAIL_CHARS + 5):
        cut = redact_detail("x" * at + " " + IBAN + " tail")
        assert "ORYO" not in cut
        assert IBAN.split()[0] not in cut or len(cut) < at


def test_a_quote_left_open_runs_to_the_end() -> None:
    assert redact_detail(f"name: '{NAME} and more") == "name: '…'"
    assert redact_detail(f'"{NAME}') == "'…'"
