"""Keys for pseudonymization and encryption, kept out of logs and reprs.

A `Keyring` holds one pseudonymization key (HMAC) and any number of encryption keys by key
id; new tokens use the current encryption key, older tokens name theirs. Destroying a key
makes every token encrypted under it unreadable (crypto-shredding): destroy it in every
process and in the file or secret it came from, or it is not gone.

File format (YAML or JSON), keys in standard base64 of exactly 32 bytes:

    pseudonym_key: <base64>
    encryption_keys: {2026-12: <base64>, 2027-01: <base64>}
    current_key_id: 2027-01

Environment: AGOGOSML_PII_PSEUDONYM_KEY, AGOGOSML_PII_ENCRYPTION_KEYS ("id:base64,id:base64")
and AGOGOSML_PII_CURRENT_KEY_ID (defaults to the last listed key).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agogosml.privacy.errors import KeyUnavailableError, PolicyError

KEY_BYTES = 32
# Key ids travel in every token, between dots: keep them short and dot-free.
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def decode_key(encoded: str, name: str) -> bytes:
    """A 32-byte key from standard base64, refused with a message naming `name`."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PolicyError(f"key {name}: not valid base64") from None
    if len(key) != KEY_BYTES:
        raise PolicyError(f"key {name}: {len(key)} bytes, need {KEY_BYTES}")
    return key


def check_key_id(key_id: str) -> str:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise PolicyError(f"key id {key_id!r}: use 1-64 of A-Z a-z 0-9 _ -")
    return key_id


class Keyring:
    """Pseudonymization key and encryption keys by id; never shows key material."""

    __slots__ = ("_ciphers", "_current", "_destroyed", "_keys", "_pseudonym_key")

    def __init__(
        self,
        *,
        pseudonym_key: bytes | None = None,
        encryption_keys: Mapping[str, bytes] | None = None,
        current_key_id: str | None = None,
    ) -> None:
        keys = dict(encryption_keys or {})
        for key_id, key in keys.items():
            check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise PolicyError(f"key {key_id}: {len(key)} bytes, need {KEY_BYTES}")
        if pseudonym_key is not None and len(pseudonym_key) != KEY_BYTES:
            raise PolicyError(f"pseudonym key: {len(pseudonym_key)} bytes, need {KEY_BYTES}")
        if current_key_id is None and keys:
            current_key_id = list(keys)[-1]
        if current_key_id is not None and current_key_id not in keys:
            raise PolicyError(f"current key id {current_key_id!r} is not among the keys")
        if pseudonym_key is not None and pseudonym_key in keys.values():
            raise PolicyError("the pseudonym key must differ from every encryption key")
        self._pseudonym_key = pseudonym_key
        self._keys = keys
        self._current = current_key_id
        self._ciphers: dict[str, AESGCM] = {}
        self._destroyed: set[str] = set()

    @classmethod
    def from_file(cls, path: str | Path) -> Keyring:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"keyring {path}: cannot read ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise PolicyError(f"keyring {path}: expected a mapping")
        unknown = set(data) - {"pseudonym_key", "encryption_keys", "current_key_id"}
        if unknown:
            raise PolicyError(f"keyring {path}: unknown entries {sorted(map(str, unknown))}")
        raw_keys = data.get("encryption_keys") or {}
        if not isinstance(raw_keys, dict):
            raise PolicyError(f"keyring {path}: encryption_keys must be a mapping")
        pseudonym = data.get("pseudonym_key")
        return cls(
            pseudonym_key=None if pseudonym is None else decode_key(str(pseudonym), "pseudonym"),
            encryption_keys={
                check_key_id(str(key_id)): decode_key(str(value), str(key_id))
                for key_id, value in raw_keys.items()
            },
            current_key_id=None
            if data.get("current_key_id") is None
            else str(data["current_key_id"]),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        env = os.environ if environ is None else environ
        pseudonym = env.get("AGOGOSML_PII_PSEUDONYM_KEY")
        keys: dict[str, bytes] = {}
        for item in filter(None, env.get("AGOGOSML_PII_ENCRYPTION_KEYS", "").split(",")):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep:
                raise PolicyError("AGOGOSML_PII_ENCRYPTION_KEYS: expected id:base64 items")
            keys[check_key_id(key_id)] = decode_key(encoded, key_id)
        return cls(
            pseudonym_key=None if pseudonym is None else decode_key(pseudonym, "pseudonym"),
            encryption_keys=keys,
            current_key_id=env.get("AGOGOSML_PII_CURRENT_KEY_ID") or None,
        )

    def __repr__(self) -> str:
        return (
            f"Keyring(pseudonym_key={'set' if self._pseudonym_key else 'unset'}, "
            f"encryption_key_ids={sorted(self._keys)}, current_key_id={self._current!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Keyring is not picklable: key material stays in this process")

    @property
    def has_pseudonym_key(self) -> bool:
        return self._pseudonym_key is not None

    @property
    def current_key_id(self) -> str | None:
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def pseudonym_key(self) -> bytes:
        if self._pseudonym_key is None:
            raise KeyUnavailableError("no pseudonym key in the keyring")
        return self._pseudonym_key

    def cipher(self, key_id: str) -> AESGCM:
        """The AES-256-GCM cipher for `key_id`; KeyUnavailableError once destroyed."""
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        key = self._keys.get(key_id)
        if key is None:
            state = "was destroyed" if key_id in self._destroyed else "is unknown"
            raise KeyUnavailableError(f"encryption key {key_id!r} {state}")
        cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher

    def destroy(self, key_id: str) -> None:
        """Forget key `key_id` and its cipher; tokens under it can no longer be decrypted.

        Python cannot guarantee the bytes are wiped from memory; what it guarantees is that
        this keyring will never use them again."""
        self._keys.pop(key_id, None)
        self._ciphers.pop(key_id, None)
        self._destroyed.add(key_id)
        if self._current == key_id:
            self._current = None
