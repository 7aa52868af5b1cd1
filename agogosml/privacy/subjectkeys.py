"""Crypto-shredding per data subject: one data key per subject pseudonym, kept wrapped.

- A subject's data key is 32 random bytes, made on the subject's first use and stored only
  wrapped: AES-256-GCM under a key-encryption key (KEK), the current key of a keyring of its
  own (a mounted Secret; never the period keyring, whose keys are destroyed on a schedule).
  The associated data binds each wrapped key to its subject's key id, so a wrapped key moved
  to another row does not open.
- Its key id is "s-" and 26 base32 characters of a SHA-256 of the pseudonym (`subject_key_id`):
  it fits a token's key id, so a field encrypted under it reads "enc1:s-…:…", and names the
  subject only as a hash of its pseudonym. The pseudonym itself is not stored.
- `shred(subject)` destroys the wrapped key for good and leaves a tombstone with the time (no
  key material) for audits: tokens and sealed dead letters under the key can no longer be
  opened (SubjectShreddedError, "key for subject s-… was shredded"), and no new key is ever
  made for that subject, so its later records that need one are refused instead of being
  encrypted under a key that could be read.
- Several processes share one database: a key is made by insert-or-ignore then read, so they
  all use the first one written; a shred and a concurrent first use serialise on the row.
- Each store caches keys for `cache_ttl_s` (30 s by default) so the reader does not query
  the database per record: a shred takes effect at once in the process that shreds and
  within `cache_ttl_s` in every other process. Tombstones are cached for good. `preload`
  fetches (and makes) a whole batch's keys in a few statements.
- Remnants: a shredded key's wrapped bytes may survive in database pages, the WAL or a backup
  (SQLite is opened with secure_delete; PostgreSQL keeps dead rows until VACUUM). They are
  useless without the KEK; to make them useless for good, rotate the KEK: add a new current
  key, `rewrap()`, then destroy the old one everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidTag

from agogosml.privacy.actions import NONCE_BYTES, decrypt_value, token_key_id
from agogosml.privacy.errors import KeyUnavailableError, PolicyError, PrivacyError
from agogosml.privacy.keys import KEY_BYTES, Keyring
from agogosml.privacy.lineage.subjects import check_subject
from agogosml.sqldb.database import Connection, SqlDatabase, now_ms
from agogosml.sqldb.schema import Migration, Schema
from agogosml.sqldb.urls import POSTGRES_URLS, SQLITE_URL

SUBJECT_KEY_PREFIX = "s-"
SUBJECT_KEY_ID_CHARS = 26  # 128 bits of SHA-256 in base32: collisions stay negligible
DEFAULT_CACHE_TTL_S = 30.0
DEFAULT_MAX_CACHED = 100_000
_KEY_ID_DOMAIN = b"agogosml subject key id\x00"
_WRAP_DOMAIN = "agogosml subject key v1:"
_REWRAP_PAGE = 1_000
_IN_LIST = 500

SCHEMA = Schema("the subject key store", "subject_keys_schema_version", (
    Migration(1, "subject data keys, wrapped, and tombstones of shredded ones", (
        # One row per subject that ever had a key or was shredded. A shred clears the key
        # and keeps the row as a tombstone: the row's key serialises a shred with a
        # concurrent first use, and refuses a new key for a shredded subject.
        """CREATE TABLE subject_keys (
            key_id TEXT PRIMARY KEY,
            kek_id TEXT,
            wrapped {blob},
            created_at_ms BIGINT,
            shredded_at_ms BIGINT,
            CHECK ((wrapped IS NULL) = (shredded_at_ms IS NOT NULL)),
            CHECK ((wrapped IS NULL) = (kek_id IS NULL)))""",
    )),
), {"blob": {"sqlite": "BLOB", "postgres": "BYTEA"}})


class SubjectKeyStoreError(PrivacyError):
    """The subject key store cannot be reached or read (the database is down or broken)."""


class SubjectShreddedError(KeyUnavailableError):
    """The subject's key was shredded: what was encrypted under it is gone for good."""


def subject_key_id(subject: str) -> str:
    """The key id of a subject pseudonym's data key; InvalidSubjectError (a PrivacyError)
    for a subject no store can hold (empty, over 128 characters, NUL, lone surrogates)."""
    text = check_subject(subject).encode("utf-8")
    digest = hashlib.sha256(_KEY_ID_DOMAIN + text).digest()[:16]
    return SUBJECT_KEY_PREFIX + base64.b32encode(digest).decode("ascii")[
        :SUBJECT_KEY_ID_CHARS].lower()


def is_subject_key_id(key_id: str) -> bool:
    """Whether a token's or a letter's key id names a subject key rather than a period key."""
    return key_id.startswith(SUBJECT_KEY_PREFIX)


def check_period_keyring(keyring: Keyring) -> Keyring:
    """`keyring`, refused if one of its key ids could be taken for a subject key's."""
    clashing = sorted(key_id for key_id in keyring.key_ids if is_subject_key_id(key_id))
    if clashing:
        raise PolicyError(f"encryption key ids {clashing} start with {SUBJECT_KEY_PREFIX!r}, "
                          "which is kept for subject keys: rename them")
    return keyring


def shredded_message(key_id: str) -> str:
    return f"key for subject {key_id} was shredded"


class SubjectKeys(Protocol):
    """Where the engine and the dead-letter sealer get a subject's key."""

    def keyring_for(self, subject: str) -> Keyring:
        """A keyring whose current (only) key is the subject's, made on first use;
        SubjectShreddedError once shredded."""
        ...

    def keyring_for_key_id(self, key_id: str) -> Keyring:
        """The keyring of an existing subject key, to decrypt; never makes a key."""
        ...


class _Cached(NamedTuple):
    expires_at: float
    keyring: Keyring | None
    """None: the key was shredded."""


class _KeyCache:
    """Keyrings by key id for `ttl_s`, tombstones for good, at most `max_entries` (the
    least recently used go first)."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str) -> _Cached | None:
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return None
            if entry.expires_at <= self._clock():
                del self._entries[key_id]
                return None
            self._entries.move_to_end(key_id)
            return entry

    def put(self, key_id: str, keyring: Keyring | None) -> None:
        if keyring is not None and self._ttl_s <= 0:
            return
        expires_at = math.inf if keyring is None else self._clock() + self._ttl_s
        with self._lock:
            self._entries[key_id] = _Cached(expires_at, keyring)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class SubjectKeyStore(SqlDatabase):
    """Subject data keys over one backend connection (see agogosml.sqldb); `kek` holds the
    key-encryption keys: new keys are wrapped under its current key, each stored key is
    unwrapped with the KEK id it names. Thread-safe; calls block on the database on a cache
    miss."""

    schema = SCHEMA

    def __init__(self, connection: Connection, kek: Keyring, *,
                 cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
                 max_cached: int = DEFAULT_MAX_CACHED,
                 clock: Callable[[], float] = time.monotonic,
                 schema_version: int | None = None) -> None:
        problem = (
            "cache_ttl_s must be a finite number of seconds, 0 or more"
            if not math.isfinite(cache_ttl_s) or cache_ttl_s < 0 else
            "max_cached must be at least 1" if max_cached < 1 else
            "the key-encryption keyring has no current key" if kek.current_key_id is None
            else None)
        if problem is not None:
            connection.close()
            raise PolicyError(problem)
        self._kek = kek
        self._cache = _KeyCache(cache_ttl_s, max_cached, clock)
        self._cache_ttl_s = cache_ttl_s
        self._errors = _driver_errors(connection.dialect)
        super().__init__(connection, schema_version)

    def __repr__(self) -> str:
        return (f"SubjectKeyStore(dialect={self.dialect!r}, "
                f"kek_ids={sorted(self._kek.key_ids)}, cache_ttl_s={self._cache_ttl_s})")

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SubjectKeyStore is not picklable: key material stays in this process")

    @contextmanager
    def _database(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise SubjectKeyStoreError(
                f"the subject key store is unavailable ({type(exc).__name__})") from exc

    def keyring_for(self, subject: str) -> Keyring:
        key_id = subject_key_id(subject)
        cached = self._cached(key_id)
        if cached is not None:
            return cached
        with self._database():
            row = self._row(key_id)
            if row is None:
                self._insert_new_key(key_id)
                row = self._row(key_id)
        if row is None:  # only a database that loses committed rows gets here
            raise SubjectKeyStoreError(f"subject key {key_id} vanished after it was written")
        return self._remember(key_id, row)

    def keyring_for_key_id(self, key_id: str) -> Keyring:
        if not is_subject_key_id(key_id):
            raise KeyUnavailableError(f"{key_id!r} is not a subject key id")
        cached = self._cached(key_id)
        if cached is not None:
            return cached
        with self._database():
            row = self._row(key_id)
        if row is None:
            raise KeyUnavailableError(f"subject key {key_id} is unknown to this store")
        return self._remember(key_id, row)

    def preload(self, subjects: Iterable[str]) -> int:
        """Brings the keys of `subjects` into the cache in a few statements, making those
        that have none, so a batch's records do not query the database one by one (with a
        cache_ttl_s of 0 nothing is kept). Returns how many keys are now cached. Subjects no
        store can hold, shredded ones and keys that do not unwrap are passed over: the
        record's own `keyring_for` refuses them."""
        wanted: set[str] = set()
        for subject in subjects:
            try:
                key_id = subject_key_id(subject)
            except PrivacyError:
                continue
            if self._cache.get(key_id) is None:
                wanted.add(key_id)
        if not wanted:
            return 0
        with self._database():
            rows = self._rows(sorted(wanted))
            missing = sorted(wanted - rows.keys())
            if missing:
                kek_id, at = self._current_kek_id(), now_ms()
                with self._lock, self._transaction() as cursor:
                    cursor.executemany(self._sql(
                        "INSERT INTO subject_keys (key_id, kek_id, wrapped, created_at_ms) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING"),
                        [(key_id, kek_id, self._wrap(key_id, os.urandom(KEY_BYTES), kek_id), at)
                         for key_id in missing])
                rows.update(self._rows(missing))
        loaded = 0
        for key_id, row in rows.items():
            try:
                self._remember(key_id, row)
            except KeyUnavailableError:
                continue
            loaded += 1
        return loaded

    def shred(self, subject: str) -> bool:
        """Destroys the subject's key for good, keeping a tombstone with the time; True when
        a live key was destroyed now, False when there was none (a tombstone is still kept,
        so no key is ever made for the subject) or it was shredded before."""
        key_id = subject_key_id(subject)
        at = now_ms()
        with self._database(), self._lock, self._transaction() as cursor:
            # The tombstone goes in first if the subject has no row: a concurrent first use
            # then finds it. If a row exists (or is being written), its key is cleared.
            cursor.execute(self._sql(
                "INSERT INTO subject_keys (key_id, shredded_at_ms) VALUES (?, ?) "
                "ON CONFLICT (key_id) DO NOTHING"), (key_id, at))
            destroyed = False
            if cursor.rowcount == 0:
                cursor.execute(self._sql(
                    "UPDATE subject_keys SET kek_id = NULL, wrapped = NULL, shredded_at_ms = ? "
                    "WHERE key_id = ? AND shredded_at_ms IS NULL"), (at, key_id))
                destroyed = cursor.rowcount == 1
        self._cache.put(key_id, None)
        return destroyed

    def shredded_at_ms(self, subject: str) -> int | None:
        """When the subject's key was shredded (epoch milliseconds), None if it was not."""
        key_id = subject_key_id(subject)
        with self._database():
            rows = self._query("SELECT shredded_at_ms FROM subject_keys WHERE key_id = ?",
                               (key_id,))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def rewrap(self) -> int:
        """Wraps every live key that is under another KEK again under the current one;
        returns how many. After it, the older KEKs can be destroyed."""
        current = self._current_kek_id()
        done = 0
        after = ""
        while True:
            with self._database():
                rows = self._query(
                    "SELECT key_id, kek_id, wrapped FROM subject_keys WHERE key_id > ? "
                    "AND wrapped IS NOT NULL AND kek_id <> ? ORDER BY key_id LIMIT ?",
                    (after, current, _REWRAP_PAGE))
            if not rows:
                return done
            for key_id, kek_id, wrapped in rows:
                data_key = self._unwrap(key_id, str(kek_id), bytes(wrapped))
                with self._database(), self._lock, self._transaction() as cursor:
                    cursor.execute(self._sql(
                        "UPDATE subject_keys SET kek_id = ?, wrapped = ? "
                        "WHERE key_id = ? AND kek_id = ?"),
                        (current, self._wrap(key_id, data_key, current), key_id, kek_id))
                    done += cursor.rowcount
            after = str(rows[-1][0])

    def _current_kek_id(self) -> str:
        kek_id = self._kek.current_key_id
        if kek_id is None:
            raise KeyUnavailableError("the key-encryption keyring's current key was destroyed")
        return kek_id

    def _cached(self, key_id: str) -> Keyring | None:
        entry = self._cache.get(key_id)
        if entry is None:
            return None
        if entry.keyring is None:
            raise SubjectShreddedError(shredded_message(key_id))
        return entry.keyring

    def _row(self, key_id: str) -> tuple[Any, Any] | None:
        rows = self._query("SELECT kek_id, wrapped FROM subject_keys WHERE key_id = ?",
                           (key_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def _rows(self, key_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
        found: dict[str, tuple[Any, Any]] = {}
        for start in range(0, len(key_ids), _IN_LIST):
            chunk = key_ids[start:start + _IN_LIST]
            marks = ", ".join("?" * len(chunk))
            for key_id, kek_id, wrapped in self._query(
                    "SELECT key_id, kek_id, wrapped FROM subject_keys "  # noqa: S608 - only ?s
                    f"WHERE key_id IN ({marks})", chunk):
                found[str(key_id)] = (kek_id, wrapped)
        return found

    def _insert_new_key(self, key_id: str) -> None:
        kek_id = self._current_kek_id()
        wrapped = self._wrap(key_id, os.urandom(KEY_BYTES), kek_id)
        with self._lock, self._transaction() as cursor:
            # Another process may have written the subject's key (or its tombstone)
            # meanwhile: the first row wins, and every process reads it back.
            cursor.execute(self._sql(
                "INSERT INTO subject_keys (key_id, kek_id, wrapped, created_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING"),
                (key_id, kek_id, wrapped, now_ms()))

    def _remember(self, key_id: str, row: tuple[Any, Any]) -> Keyring:
        kek_id, wrapped = row
        if wrapped is None:
            self._cache.put(key_id, None)
            raise SubjectShreddedError(shredded_message(key_id))
        data_key = self._unwrap(key_id, str(kek_id), bytes(wrapped))
        keyring = Keyring(encryption_keys={key_id: data_key}, current_key_id=key_id)
        self._cache.put(key_id, keyring)
        return keyring

    def _wrap(self, key_id: str, data_key: bytes, kek_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.cipher(kek_id).encrypt(nonce, data_key, _wrap_aad(key_id))

    def _unwrap(self, key_id: str, kek_id: str, wrapped: bytes) -> bytes:
        cipher = self._kek.cipher(kek_id)  # KeyUnavailableError: KEK unknown or destroyed
        try:
            data_key = cipher.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                      _wrap_aad(key_id))
        except InvalidTag:
            raise KeyUnavailableError(
                f"subject key {key_id} does not unwrap under key-encryption key {kek_id!r} "
                "(another key under that id, or a tampered row)") from None
        if len(data_key) != KEY_BYTES:
            raise KeyUnavailableError(f"subject key {key_id} has the wrong length")
        return data_key

    @property
    def cached_keys(self) -> int:
        """How many keys and tombstones this process holds in its cache."""
        return len(self._cache)

    def __enter__(self) -> SubjectKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrap_aad(key_id: str) -> bytes:
    return (_WRAP_DOMAIN + key_id).encode("ascii")


def _driver_errors(dialect: str) -> tuple[type[Exception], ...]:
    if dialect == "postgres":
        import psycopg

        return (psycopg.Error,)
    return (sqlite3.Error,)


def sqlite_subject_keys(path: str | Path, kek: Keyring, *,
                        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
                        clock: Callable[[], float] = time.monotonic,
                        schema_version: int | None = None) -> SubjectKeyStore:
    """The store in a SQLite file (created with its folder if missing) or ":memory:"."""
    from agogosml.sqldb.sqlite import SqliteConnection

    connection = SqliteConnection(path)
    with connection.lock:
        # Freed pages are overwritten: a shredded key's bytes do not linger in the file.
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA secure_delete=ON")
        finally:
            cursor.close()
    return SubjectKeyStore(connection, kek, cache_ttl_s=cache_ttl_s, clock=clock,
                           schema_version=schema_version)


def postgres_subject_keys(conninfo: str, kek: Keyring, *,
                          cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
                          clock: Callable[[], float] = time.monotonic,
                          schema_version: int | None = None) -> SubjectKeyStore:
    """The store in a PostgreSQL database (a libpq connection string or URL)."""
    from agogosml.sqldb.postgres import PostgresConnection

    return SubjectKeyStore(PostgresConnection(conninfo), kek, cache_ttl_s=cache_ttl_s,
                           clock=clock, schema_version=schema_version)


def open_subject_keys(url: str, kek: Keyring, *,
                      cache_ttl_s: float = DEFAULT_CACHE_TTL_S) -> SubjectKeyStore:
    """The store a URL names, migrated: sqlite:///<path> or postgresql://… (it may share a
    database with the event store and the lineage index). The URL may hold a password: it
    is never put in an error."""
    if url.startswith(SQLITE_URL):
        return sqlite_subject_keys(url.removeprefix(SQLITE_URL), kek, cache_ttl_s=cache_ttl_s)
    if url.startswith(POSTGRES_URLS):
        return postgres_subject_keys(url, kek, cache_ttl_s=cache_ttl_s)
    raise PolicyError("the subject key store URL must start with sqlite:/// or postgresql://")


def decrypt_token(token: str, keyring: Keyring, subject_keys: SubjectKeys | None = None) -> Any:
    """The value of a token under a period key (from `keyring`) or a subject key (from
    `subject_keys`). SubjectShreddedError once the subject's key was shredded, other
    KeyUnavailableErrors for keys not given, TokenError for a malformed or tampered token."""
    key_id = token_key_id(token)
    if not is_subject_key_id(key_id):
        return decrypt_value(token, keyring)
    if subject_keys is None:
        raise KeyUnavailableError(f"token under subject key {key_id}: no subject key store")
    return decrypt_value(token, subject_keys.keyring_for_key_id(key_id))
