"""The subject key store (both backends): one key per subject however many readers ask for
it at once, shredding for good with a dated tombstone, the per-process cache and its TTL,
wrapped keys useless without the KEK, and any subject either held exactly or refused."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agogosml.privacy.actions import encrypt_value
from agogosml.privacy.errors import KeyUnavailableError, PolicyError, TokenError
from agogosml.privacy.keys import KEY_ID_PATTERN, Keyring
from agogosml.privacy.lineage import InvalidSubjectError
from agogosml.privacy.lineage.subjects import MAX_SUBJECT_CHARS
from agogosml.privacy.subjectkeys import (
    SubjectKeyStore,
    SubjectShreddedError,
    decrypt_token,
    is_subject_key_id,
    open_subject_keys,
    sqlite_subject_keys,
    subject_key_id,
)
from tests.monitor.subjectkeys.conftest import Clock, Query, StoreFactory, kek_ring

PERIOD = Keyring(encryption_keys={"2026-12": os.urandom(32)})


def token_for(store: SubjectKeyStore, subject: str, value: object = "secret") -> str:
    return encrypt_value(value, store.keyring_for(subject))


def test_a_subject_gets_one_key_shared_by_every_reader(
        open_store: StoreFactory, location: str, raw_sql: Query) -> None:
    first, second = open_store(location), open_store(location)
    token = token_for(first, "ps_alice")
    assert token.startswith(f"enc1:{subject_key_id('ps_alice')}:")
    assert decrypt_token(token, PERIOD, second) == "secret", "the second reader read the key"
    assert decrypt_token(token_for(second, "ps_alice", 7), PERIOD, first) == 7
    assert decrypt_token(token_for(first, "ps_bob"), PERIOD, second) == "secret"
    assert raw_sql("SELECT COUNT(*) FROM subject_keys") == [(2,)]


def test_readers_racing_on_first_use_agree_on_each_key(
        open_store: StoreFactory, location: str) -> None:
    readers = [open_store(location) for _ in range(4)]
    subjects = [f"ps_{n}" for n in range(40)]
    start = threading.Barrier(len(readers))

    def use_all(reader: SubjectKeyStore) -> dict[str, str]:
        start.wait()
        return {subject: token_for(reader, subject, subject) for subject in subjects}

    with ThreadPoolExecutor(len(readers)) as pool:
        tokens = list(pool.map(use_all, readers))
    checker = open_store(location, cache_ttl_s=0)
    for made_by in tokens:
        for subject, token in made_by.items():
            assert decrypt_token(token, PERIOD, checker) == subject


def test_shredding_a_subject_makes_its_tokens_unreadable_and_spares_the_others(
        open_store: StoreFactory, location: str, raw_sql: Query) -> None:
    reader, forgetter = open_store(location), open_store(location)
    alice, bob = token_for(reader, "ps_alice"), token_for(reader, "ps_bob")
    period_token = encrypt_value("period", PERIOD)

    assert forgetter.shred("ps_alice") is True
    assert forgetter.shred("ps_alice") is False, "already shredded"
    with pytest.raises(SubjectShreddedError,
                       match=f"key for subject {subject_key_id('ps_alice')} was shredded"):
        decrypt_token(alice, PERIOD, forgetter)
    fresh = open_store(location)
    with pytest.raises(KeyUnavailableError, match="was shredded"):
        decrypt_token(alice, PERIOD, fresh)
    with pytest.raises(SubjectShreddedError):
        fresh.keyring_for("ps_alice")  # and no new key is ever made for the subject
    assert decrypt_token(bob, PERIOD, fresh) == "secret"
    assert decrypt_token(period_token, PERIOD, fresh) == "period"

    [(kek_id, wrapped, created, shredded)] = raw_sql(
        "SELECT kek_id, wrapped, created_at_ms, shredded_at_ms FROM subject_keys "
        "WHERE key_id = ?", subject_key_id("ps_alice"))
    assert (kek_id, wrapped) == (None, None), "no key material is kept"
    assert isinstance(created, int)
    assert isinstance(shredded, int)
    assert shredded >= created
    assert fresh.shredded_at_ms("ps_alice") == shredded
    assert fresh.shredded_at_ms("ps_bob") is None
    assert fresh.shredded_at_ms("ps_never_seen") is None


def test_a_subject_shredded_before_its_first_record_never_gets_a_key(
        store: SubjectKeyStore, raw_sql: Query) -> None:
    assert store.shred("ps_carol") is False, "no key to destroy"
    assert store.shredded_at_ms("ps_carol") is not None, "but the shred is recorded"
    with pytest.raises(SubjectShreddedError):
        store.keyring_for("ps_carol")
    assert raw_sql("SELECT COUNT(*) FROM subject_keys WHERE wrapped IS NOT NULL") == [(0,)]


def test_another_process_sees_a_shred_once_its_cache_expires(
        open_store: StoreFactory, location: str) -> None:
    clock = Clock()
    reader = open_store(location, cache_ttl_s=30, clock=clock)
    forgetter = open_store(location)
    token = token_for(reader, "ps_alice")
    forgetter.shred("ps_alice")

    clock.now += 29
    # Within the TTL the reader still holds the key: documented, bounded by cache_ttl_s.
    assert decrypt_token(token, PERIOD, reader) == "secret"
    token_for(reader, "ps_alice")
    clock.now += 2
    with pytest.raises(SubjectShreddedError):
        decrypt_token(token, PERIOD, reader)
    with pytest.raises(SubjectShreddedError):
        reader.keyring_for("ps_alice")


def test_the_cache_spares_the_database_and_a_shred_is_immediate_where_it_happens(
        open_store: StoreFactory, location: str, raw_sql: Query) -> None:
    clock = Clock()
    reader = open_store(location, cache_ttl_s=30, clock=clock)
    token = token_for(reader, "ps_alice")
    # The row is changed behind the reader's back: while its cache holds the key, the
    # reader does not look.
    raw_sql("UPDATE subject_keys SET wrapped = ? WHERE key_id = ?", os.urandom(60),
            subject_key_id("ps_alice"))
    assert decrypt_token(token, PERIOD, reader) == "secret"
    clock.now += 31
    with pytest.raises(KeyUnavailableError, match="does not unwrap"):
        decrypt_token(token, PERIOD, reader)

    token = token_for(reader, "ps_bob")
    reader.shred("ps_bob")
    with pytest.raises(SubjectShreddedError):
        decrypt_token(token, PERIOD, reader)


def test_a_zero_ttl_reads_the_database_every_time(
        open_store: StoreFactory, location: str) -> None:
    reader = open_store(location, cache_ttl_s=0)
    token = token_for(reader, "ps_alice")
    open_store(location).shred("ps_alice")
    with pytest.raises(SubjectShreddedError):
        decrypt_token(token, PERIOD, reader)
    assert reader.cached_keys == 1, "only the tombstone"


def test_wrapped_keys_are_useless_without_the_kek(
        open_store: StoreFactory, location: str, raw_sql: Query) -> None:
    token = token_for(open_store(location), "ps_alice")
    key_id = subject_key_id("ps_alice")
    impostor = open_store(location, kek_keyring=kek_ring(**{"kek-1": os.urandom(32)}))
    with pytest.raises(KeyUnavailableError, match="does not unwrap under key-encryption key"):
        decrypt_token(token, PERIOD, impostor)
    other_id = open_store(location, kek_keyring=kek_ring(**{"kek-2": os.urandom(32)}))
    with pytest.raises(KeyUnavailableError, match="'kek-1' is unknown"):
        other_id.keyring_for_key_id(key_id)

    # A wrapped key copied onto another subject's row does not open there either.
    owner = open_store(location)
    owner.keyring_for("ps_bob")
    raw_sql("UPDATE subject_keys SET wrapped = (SELECT wrapped FROM subject_keys "
            "WHERE key_id = ?) WHERE key_id = ?", key_id, subject_key_id("ps_bob"))
    with pytest.raises(KeyUnavailableError, match="does not unwrap"):
        open_store(location).keyring_for("ps_bob")


def test_the_kek_can_be_rotated_then_the_old_one_dropped(
        open_store: StoreFactory, location: str) -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = open_store(location, kek_keyring=kek_ring(**{"kek-1": old}))
    tokens = {subject: token_for(before, subject, subject) for subject in ("p1", "p2", "p3")}
    before.shred("p3")
    rotating = open_store(location, kek_keyring=kek_ring(**{"kek-1": old, "kek-2": new}))
    assert rotating.rewrap() == 2, "the shredded key stays shredded"
    assert rotating.rewrap() == 0
    after = open_store(location, kek_keyring=kek_ring(**{"kek-2": new}))
    assert decrypt_token(tokens["p1"], PERIOD, after) == "p1"
    assert decrypt_token(tokens["p2"], PERIOD, after) == "p2"
    with pytest.raises(SubjectShreddedError):
        decrypt_token(tokens["p3"], PERIOD, after)


def test_tokens_name_what_is_missing(store: SubjectKeyStore) -> None:
    token = token_for(store, "ps_alice")
    with pytest.raises(KeyUnavailableError, match="no subject key store"):
        decrypt_token(token, PERIOD)
    with pytest.raises(KeyUnavailableError, match="unknown to this store"):
        store.keyring_for_key_id(subject_key_id("ps_nobody"))
    with pytest.raises(KeyUnavailableError, match="not a subject key id"):
        store.keyring_for_key_id("2026-12")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenError):
        decrypt_token(tampered, PERIOD, store)


def test_the_store_shows_no_key_material(store: SubjectKeyStore) -> None:
    keyring = store.keyring_for("ps_alice")
    assert "ps_alice" not in repr(store)
    assert repr(keyring) == (f"Keyring(pseudonym_key=unset, encryption_key_ids="
                             f"['{subject_key_id('ps_alice')}'], "
                             f"current_key_id='{subject_key_id('ps_alice')}')")
    with pytest.raises(TypeError, match="not picklable"):
        store.__reduce__()


# Every code point, lone surrogates included, around the length limit too.
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=MAX_SUBJECT_CHARS + 4)
LOOKALIKES = st.sampled_from(["p1", "P1", "p1 ", "\uff501", "é", "e\u0301", "%", "'", "a/b"])


def valid(text: str) -> bool:
    return (0 < len(text) <= MAX_SUBJECT_CHARS and "\x00" not in text
            and not any(0xD800 <= ord(c) <= 0xDFFF for c in text))


@pytest.fixture
def two_readers(open_store: StoreFactory, location: str) -> tuple[SubjectKeyStore, ...]:
    """Two uncached stores on one database, for as long as the test (all its examples)."""
    return open_store(location, cache_ttl_s=0), open_store(location, cache_ttl_s=0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subjects=st.lists(ANY_TEXT | LOOKALIKES, min_size=1, max_size=4))
@example(subjects=["x" * MAX_SUBJECT_CHARS, "x" * (MAX_SUBJECT_CHARS + 1)])
@example(subjects=["", "\x00", "\ud800", "p1"])
@example(subjects=["s-", "enc1:s-x:y", "'; DROP TABLE subject_keys; --"])
def test_any_subject_gets_its_own_key_or_is_refused(
        two_readers: tuple[SubjectKeyStore, ...], subjects: list[str]) -> None:
    reader, other = two_readers
    for subject in subjects:
        if not valid(subject):
            with pytest.raises(InvalidSubjectError):
                reader.keyring_for(subject)
            with pytest.raises(InvalidSubjectError):
                reader.shred(subject)
            continue
        key_id = subject_key_id(subject)
        assert KEY_ID_PATTERN.fullmatch(key_id)
        assert is_subject_key_id(key_id)
        assert subject not in key_id or len(subject) < 3
        token = token_for(reader, subject, subject)
        assert decrypt_token(token, PERIOD, other) == subject
        # Exactly its own key: no case folding, normalization or trimming shares one.
        for lookalike in {"p1", "P1", "p1 ", "\uff501"} - {subject}:
            assert subject_key_id(lookalike) != key_id


def test_preloading_a_batch_fills_the_cache_in_a_few_statements(
        open_store: StoreFactory, location: str, raw_sql: Query) -> None:
    other = open_store(location)
    known = token_for(other, "ps_known")
    other.shred("ps_gone")
    reader = open_store(location)
    batch = [f"ps_{n}" for n in range(1_200)] + ["ps_known", "ps_gone", "", "\x00"]
    assert reader.preload(batch * 2) == 1_201, "every valid, live subject, once"
    assert reader.preload(batch) == 0, "all cached already"
    assert raw_sql("SELECT COUNT(*) FROM subject_keys") == [(1_202,)]
    # From the cache alone: the rows can go (behind the store's back) and the keys stay.
    tokens = {subject: token_for(reader, subject, subject) for subject in batch[:1_200]}
    assert decrypt_token(known, PERIOD, reader) == "secret"
    with pytest.raises(SubjectShreddedError):
        reader.keyring_for("ps_gone")
    raw_sql("DELETE FROM subject_keys WHERE key_id <> ?", subject_key_id("ps_known"))
    assert token_for(reader, "ps_7")
    raw_sql("DELETE FROM subject_keys")
    # The rows really are gone: the cache alone served the reader.
    fresh = open_store(location)
    with pytest.raises(KeyUnavailableError, match="unknown to this store"):
        decrypt_token(tokens["ps_7"], PERIOD, fresh)


def test_a_preload_agrees_with_the_keys_other_readers_made(
        open_store: StoreFactory, location: str) -> None:
    first, second = open_store(location), open_store(location)
    tokens = {subject: token_for(first, subject, subject) for subject in ("p1", "p2")}
    assert second.preload(["p1", "p2", "p3"]) == 3
    assert decrypt_token(tokens["p1"], PERIOD, second) == "p1"
    assert decrypt_token(token_for(second, "p3", 3), PERIOD, first) == 3


def test_a_store_refuses_settings_it_cannot_work_with(tmp_path: Path) -> None:
    kek = kek_ring()
    with pytest.raises(PolicyError, match="cache_ttl_s"):
        sqlite_subject_keys(tmp_path / "a.db", kek, cache_ttl_s=float("nan"))
    no_current = Keyring()
    with pytest.raises(PolicyError, match="no current key"):
        sqlite_subject_keys(tmp_path / "a.db", no_current)
    with pytest.raises(PolicyError, match="must start with sqlite:/// or postgresql://"):
        open_subject_keys("mysql://user:hunter2@db/keys", kek)
    with open_subject_keys(f"sqlite:///{tmp_path / 'b.db'}", kek) as store:
        assert store.keyring_for("p1").current_key_id == subject_key_id("p1")
