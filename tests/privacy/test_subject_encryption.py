"""Crypto-shredding per subject through the engine and the sealer (a SQLite subject key
store): a subject's fields and sealed bytes open until the subject is shredded, then never;
other subjects and the period key are untouched; any subject and any bytes round-trip or
are refused with a message; a blob never opens under another key or purpose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agogosml.errors import StoreUnavailableError
from agogosml.privacy.actions import decrypt_value, is_token, token_key_id
from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.errors import KeyUnavailableError, PolicyError, TokenError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.lineage.subjects import MAX_SUBJECT_CHARS
from agogosml.privacy.policy import Policy
from agogosml.privacy.sealing import Sealer
from agogosml.privacy.subjectkeys import (
    SubjectKeyStore,
    SubjectShreddedError,
    decrypt_token,
    sqlite_subject_keys,
    subject_key_id,
)

POLICY = Policy.from_yaml("""
fields:
  email: pseudonymize
  iban: encrypt
  profile.phone: encrypt
  note: redact
""")


@pytest.fixture
def period() -> Keyring:
    return Keyring(pseudonym_key=os.urandom(32), encryption_keys={"2026-12": os.urandom(32)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SubjectKeyStore]:
    kek = Keyring(encryption_keys={"kek-1": os.urandom(32)})
    with sqlite_subject_keys(tmp_path / "keys.db", kek, cache_ttl_s=0) as opened:
        yield opened


@pytest.fixture
def engine(period: Keyring, store: SubjectKeyStore) -> PolicyEngine:
    return PolicyEngine(POLICY, period, subject_keys=store)


RECORD = {"email": "ann@example.com", "iban": "NL91ABNA0417164300",
          "profile": {"phone": "+31 6 12345678"}, "note": "x", "amount": 3}


def test_a_subjects_fields_are_encrypted_under_its_own_key(
        engine: PolicyEngine, period: Keyring, store: SubjectKeyStore) -> None:
    out = engine.apply(RECORD, subject="ps_ann")
    assert token_key_id(out["iban"]) == subject_key_id("ps_ann")
    assert token_key_id(out["profile"]["phone"]) == subject_key_id("ps_ann")
    assert decrypt_token(out["iban"], period, store) == "NL91ABNA0417164300"
    assert decrypt_token(out["profile"]["phone"], period, store) == "+31 6 12345678"
    assert out["amount"] == 3
    assert out["note"] == "[REDACTED]"

    anonymous = engine.apply(RECORD)
    assert token_key_id(anonymous["iban"]) == "2026-12", "no subject: the period key"
    assert decrypt_value(anonymous["iban"], period) == "NL91ABNA0417164300"


def test_shredding_a_subject_leaves_its_fields_unreadable_and_refuses_its_new_records(
        engine: PolicyEngine, period: Keyring, store: SubjectKeyStore) -> None:
    ann, bob = engine.apply(RECORD, subject="ps_ann"), engine.apply(RECORD, subject="ps_bob")
    anonymous = engine.apply(RECORD)
    assert store.shred("ps_ann")
    with pytest.raises(KeyUnavailableError, match=r"key for subject s-[a-z2-7]+ was shredded"):
        decrypt_token(ann["iban"], period, store)
    assert decrypt_token(bob["iban"], period, store) == "NL91ABNA0417164300"
    assert decrypt_token(anonymous["iban"], period, store) == "NL91ABNA0417164300"

    with pytest.raises(PolicyError, match=r"field iban: key for subject s-.* was shredded"):
        engine.apply(RECORD, subject="ps_ann")
    # A record of the subject that has nothing to encrypt needs no key.
    assert engine.apply({"email": "ann@example.com"}, subject="ps_ann")["email"].startswith(
        "ps_")


def test_the_engine_refuses_a_subject_no_store_can_hold(engine: PolicyEngine) -> None:
    for hostile in ("", "\x00", "\ud800", "x" * (MAX_SUBJECT_CHARS + 1)):
        with pytest.raises(PolicyError, match="field iban: subject"):
            engine.apply(RECORD, subject=hostile)


def test_the_engine_stays_as_it_was_without_a_subject_store(period: Keyring) -> None:
    out = PolicyEngine(POLICY, period).apply(RECORD, subject="ps_ann")
    assert token_key_id(out["iban"]) == "2026-12"


def test_period_key_ids_that_look_like_subject_keys_are_refused(
        store: SubjectKeyStore) -> None:
    clashing = Keyring(encryption_keys={"s-2026": os.urandom(32)})
    with pytest.raises(PolicyError, match="kept for subject keys"):
        PolicyEngine(POLICY, clashing, subject_keys=store)
    with pytest.raises(PolicyError, match="kept for subject keys"):
        Sealer(clashing, store)


SUBJECTS = st.none() | st.text(st.characters(blacklist_categories=()),
                               max_size=MAX_SUBJECT_CHARS + 2)


def valid(subject: str) -> bool:
    return (0 < len(subject) <= MAX_SUBJECT_CHARS and "\x00" not in subject
            and not any(0xD800 <= ord(c) <= 0xDFFF for c in subject))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), subject=SUBJECTS)
@example(data=b"", subject="ps_ann")
@example(data=b"\x00" * 64, subject="\ud800")
def test_sealed_bytes_open_again_under_the_key_they_name(
        period: Keyring, store: SubjectKeyStore, data: bytes, subject: str | None) -> None:
    sealer = Sealer(period, store)
    key = sealer.key_for(subject)
    blob = key.seal(data, "original")
    assert data not in blob or len(data) < 4
    expected = subject_key_id(subject) if subject is not None and valid(subject) else "2026-12"
    assert key.key_id == expected, "a subject no store can hold falls back to the period key"
    assert sealer.key_by_id(key.key_id).open(blob, "original") == data
    with pytest.raises(TokenError):
        sealer.key_by_id(key.key_id).open(blob, "key")
    other = sealer.key_for("ps_other" if subject != "ps_other" else "ps_other2")
    with pytest.raises(TokenError):
        other.open(blob, "original")
    with pytest.raises(TokenError):
        key.open(blob[:-1] + bytes([blob[-1] ^ 1]), "original")


def test_shredding_and_destroying_keys_close_sealed_bytes(
        period: Keyring, store: SubjectKeyStore) -> None:
    sealer = Sealer(period, store)
    ann, bob, anonymous = (sealer.key_for(s) for s in ("ps_ann", "ps_bob", None))
    blobs = {key.key_id: key.seal(b"personal", "original") for key in (ann, bob, anonymous)}
    store.shred("ps_ann")
    with pytest.raises(SubjectShreddedError, match="was shredded"):
        sealer.key_by_id(ann.key_id)
    with pytest.raises(SubjectShreddedError):
        sealer.key_for("ps_ann")
    assert sealer.key_by_id(bob.key_id).open(blobs[bob.key_id], "original") == b"personal"
    assert sealer.key_by_id("2026-12").open(blobs["2026-12"], "original") == b"personal"
    period.destroy("2026-12")
    with pytest.raises(KeyUnavailableError, match="'2026-12' was destroyed"):
        sealer.key_by_id("2026-12")
    with pytest.raises(KeyUnavailableError, match="no current period key"):
        sealer.key_for(None)
    assert repr(sealer) == "Sealer(period_key_id=None, subject_keys=yes)"
    assert repr(bob) == f"SealingKey(key_id={bob.key_id!r})"


def test_without_a_store_everything_is_sealed_under_the_period_key(period: Keyring) -> None:
    sealer = Sealer(period)
    assert sealer.key_for("ps_ann").key_id == "2026-12"
    with pytest.raises(KeyUnavailableError, match="no subject key store"):
        sealer.key_by_id(subject_key_id("ps_ann"))


def test_a_store_that_is_down_falls_back_to_the_period_key(
        period: Keyring, store: SubjectKeyStore, caplog: pytest.LogCaptureFixture) -> None:
    sealer = Sealer(period, store)
    engine = PolicyEngine(POLICY, period, subject_keys=store)
    store.close()
    assert sealer.key_for("ps_ann").key_id == "2026-12"
    assert "subject key store is unavailable" in caplog.text
    assert "ps_ann" not in caplog.text
    # The engine calls it an outage (retried by the reader), not a bad record.
    with pytest.raises(StoreUnavailableError,
                       match="field iban: the subject key store is unavailable"):
        engine.apply(RECORD, subject="ps_ann")
    assert is_token(engine.apply(RECORD)["iban"])
