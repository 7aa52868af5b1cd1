"""Sealing bytes that may hold personal data (a dead letter's original record) so they are
never kept in clear: AES-256-GCM under the data subject's key when the subject is known,
else under the period key (the keyring's current key, "2026-12"), so shredding the subject
or destroying the period's key makes them unreadable.

A sealed blob is base64-free bytes: nonce (12) || ciphertext || tag (16). Its associated
data names the scheme, the key id and what the bytes are ("original", "key"), so a blob
moved to another key id or another purpose fails to open instead of opening as something
else.
"""

from __future__ import annotations

import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agogosml.privacy.actions import NONCE_BYTES
from agogosml.privacy.errors import KeyUnavailableError, PolicyError, PrivacyError, TokenError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.subjectkeys import (
    SubjectKeys,
    SubjectShreddedError,
    check_period_keyring,
    is_subject_key_id,
)

log = logging.getLogger(__name__)

SCHEME = "aes-256-gcm/v1"
TAG_BYTES = 16


class SealingKey:
    """One key, by id, that seals and opens blobs; never shows its material."""

    __slots__ = ("_cipher", "key_id")

    def __init__(self, key_id: str, cipher: AESGCM) -> None:
        self.key_id = key_id
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"SealingKey(key_id={self.key_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SealingKey is not picklable: key material stays in this process")

    def _aad(self, purpose: str) -> bytes:
        return f"{SCHEME}:{self.key_id}:{purpose}".encode("utf-8", "surrogatepass")

    def seal(self, data: bytes, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, data, self._aad(purpose))

    def open(self, blob: bytes, purpose: str) -> bytes:
        """The sealed bytes; TokenError when the blob is malformed, tampered with, or was
        sealed under another key or for another purpose."""
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise TokenError("sealed bytes too short")
        try:
            return self._cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                        self._aad(purpose))
        except InvalidTag:
            raise TokenError("sealed bytes failed authentication (tampered, or another key)"
                             ) from None


class Sealer:
    """Chooses the key a subject's bytes are sealed under, and finds the key to open them.

    `keyring`: the period keys (its current key seals what has no known subject); its key
    ids must not start with "s-" (kept for subject keys). `subject_keys`: the subject key
    store, or None to seal everything under the period key."""

    def __init__(self, keyring: Keyring, subject_keys: SubjectKeys | None = None) -> None:
        self._keyring = check_period_keyring(keyring)
        self._subject_keys = subject_keys

    def __repr__(self) -> str:
        return (f"Sealer(period_key_id={self._keyring.current_key_id!r}, "
                f"subject_keys={'yes' if self._subject_keys is not None else 'no'})")

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Sealer is not picklable: key material stays in this process")

    def period_key(self) -> SealingKey:
        """The current period key; KeyUnavailableError when the keyring has none (left)."""
        key_id = self._keyring.current_key_id
        if key_id is None:
            raise KeyUnavailableError("no current period key to seal with")
        return SealingKey(key_id, self._keyring.cipher(key_id))

    def key_for(self, subject: str | None) -> SealingKey:
        """The key to seal a record of `subject` (a pseudonym, or None) under: the subject's
        own key when there is a subject key store, else the period key. SubjectShreddedError
        when the subject's key was shredded: its bytes must not be kept at all. When the
        store cannot give the key (down, misconfigured KEK, a subject it cannot hold), the
        period key seals instead and a warning says why (without the subject)."""
        if subject is None or self._subject_keys is None:
            return self.period_key()
        try:
            keyring = self._subject_keys.keyring_for(subject)
        except SubjectShreddedError:
            raise
        except PrivacyError as error:
            log.warning("sealing under the period key: no subject key (%s)", error)
            return self.period_key()
        return _only_key(keyring)

    def key_by_id(self, key_id: str) -> SealingKey:
        """The key a blob names, to open it: SubjectShreddedError for a shredded subject's,
        KeyUnavailableError for any other key not given (or destroyed)."""
        if not is_subject_key_id(key_id):
            return SealingKey(key_id, self._keyring.cipher(key_id))
        if self._subject_keys is None:
            raise KeyUnavailableError(f"sealed under subject key {key_id}: no subject key store")
        return _only_key(self._subject_keys.keyring_for_key_id(key_id))


def _only_key(keyring: Keyring) -> SealingKey:
    key_id = keyring.current_key_id
    if key_id is None:
        raise PolicyError("a subject keyring without its key")
    return SealingKey(key_id, keyring.cipher(key_id))
