"""The value transformations a policy applies: mask, pseudonymize, encrypt and decrypt.

Encrypted token: "enc1:<key id>:<base64url(nonce || ciphertext || tag)>", AES-256-GCM with a
random 96-bit nonce; the "enc1:<key id>" header is authenticated data, so a token moved to
another key id fails authentication rather than being decrypted under the wrong key. The
plaintext is the value's JSON, so decrypting gives back the original type.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from agogosml.privacy.errors import KeyUnavailableError, TokenError
from agogosml.privacy.keys import KEY_ID_PATTERN, Keyring

TOKEN_VERSION = "enc1"  # noqa: S105 - a format tag, not a secret
NONCE_BYTES = 12
PSEUDONYM_BYTES = 16


def mask(text: str, keep_last: int, mask_char: str) -> str:
    """All but the last `keep_last` characters replaced; a text no longer than that is
    masked whole, so masking never gives back the value in clear."""
    if len(text) <= keep_last:
        return mask_char * len(text)
    hidden = len(text) - keep_last
    return mask_char * hidden + text[hidden:]


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms: the same text and key give the same pseudonym, so pseudonymized
    fields still join; without the key they cannot be reversed or recomputed."""

    __slots__ = ("_mac", "_prefix")

    def __init__(self, key: bytes, prefix: str = "ps_") -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"Pseudonymizer(prefix={self._prefix!r})"

    def __call__(self, text: str) -> str:
        mac = self._mac.copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        # 128 bits: collisions stay negligible far past any stream's distinct values.
        digest = mac.digest()[:PSEUDONYM_BYTES]
        return self._prefix + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _header(key_id: str) -> str:
    return f"{TOKEN_VERSION}:{key_id}"


def encrypt_value(value: Any, keyring: Keyring, key_id: str | None = None) -> str:
    """`value` (any JSON value) as a token under `key_id`, by default the current key.

    Raises KeyUnavailableError when there is no such key, TypeError when `value` is not
    JSON-serializable."""
    key_id = key_id or keyring.current_key_id
    if key_id is None:
        raise KeyUnavailableError("no current encryption key in the keyring")
    cipher = keyring.cipher(key_id)
    header = _header(key_id)
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, orjson.dumps(value), header.encode("ascii"))
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{header}:{body}"


def is_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_VERSION + ":")


def token_key_id(token: str) -> str:
    """The key id a token was encrypted under; TokenError when it is not a token."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not KEY_ID_PATTERN.fullmatch(parts[1]):
        raise TokenError("not an encrypted token")
    return parts[1]


def decrypt_value(token: str, keyring: Keyring) -> Any:
    """The value a token holds. KeyUnavailableError when its key is unknown or destroyed,
    TokenError when the token is malformed or was tampered with."""
    key_id = token_key_id(token)
    body = token.split(":")[2]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("token body is not base64url") from None
    if len(raw) < NONCE_BYTES + 16:
        raise TokenError("token too short")
    cipher = keyring.cipher(key_id)
    try:
        plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _header(key_id).encode())
    except InvalidTag:
        raise TokenError("token failed authentication (tampered, or another key)") from None
    return orjson.loads(plain)
