"""Keys and the reversible/irreversible actions: pseudonyms join, tokens decrypt only with
their key, tampering and destroyed keys are detected, key material never shows."""

from __future__ import annotations

import base64
import os
import pickle
from pathlib import Path

import pytest

from agogosml.privacy.actions import Pseudonymizer, decrypt_value, encrypt_value, mask
from agogosml.privacy.errors import KeyUnavailableError, PolicyError, TokenError
from agogosml.privacy.keys import Keyring


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(
        pseudonym_key=os.urandom(32),
        encryption_keys={"k1": os.urandom(32), "k2": os.urandom(32)},
    )


def test_mask_keeps_only_the_last_characters() -> None:
    assert mask("4111111111111111", 4, "*") == "************1111"
    assert mask("abc", 4, "#") == "###"  # too short to reveal anything: masked whole
    assert mask("secret", 0, "x") == "xxxxxx"


def test_pseudonyms_are_stable_per_key_and_differ_across_keys() -> None:
    key_a, key_b = os.urandom(32), os.urandom(32)
    first, again = Pseudonymizer(key_a), Pseudonymizer(key_a)
    assert first("ann@example.com") == again("ann@example.com")
    assert first("ann@example.com") != first("bob@example.com")
    assert first("ann@example.com") != Pseudonymizer(key_b)("ann@example.com")
    value = first("ann@example.com")
    assert value.startswith("ps_")
    assert len(value) == 3 + 26
    assert "ann" not in value


def test_encryption_round_trips_any_json_value(keyring: Keyring) -> None:
    for value in ("NL91 ABNA 0417 1643 00", 12.5, 7, True, {"a": [1, None]}, ""):
        token = encrypt_value(value, keyring)
        assert token.startswith("enc1:k2:")
        assert decrypt_value(token, keyring) == value


def test_same_value_encrypts_to_different_tokens(keyring: Keyring) -> None:
    assert encrypt_value("x", keyring) != encrypt_value("x", keyring)


def test_tampered_tokens_fail_authentication(keyring: Keyring) -> None:
    token = encrypt_value("secret", keyring)
    body = token.split(":")[2]
    flipped = body[:5] + ("A" if body[5] != "A" else "B") + body[6:]
    with pytest.raises(TokenError):
        decrypt_value(f"enc1:k2:{flipped}", keyring)
    with pytest.raises(TokenError):  # the key id is authenticated too
        decrypt_value(f"enc1:k1:{body}", keyring)
    for malformed in ("enc1:k2", "enc1:k2:!!!", "enc1:k2:AAAA", "enc2:k2:" + body, "x"):
        with pytest.raises(TokenError):
            decrypt_value(malformed, keyring)


def test_destroying_a_key_shreds_its_tokens_only(keyring: Keyring) -> None:
    old = encrypt_value("old", keyring, key_id="k1")
    new = encrypt_value("new", keyring)
    keyring.destroy("k1")
    with pytest.raises(KeyUnavailableError, match="destroyed"):
        decrypt_value(old, keyring)
    assert decrypt_value(new, keyring) == "new"
    keyring.destroy("k2")
    with pytest.raises(KeyUnavailableError):
        encrypt_value("more", keyring)


def test_key_material_never_shows(keyring: Keyring) -> None:
    key = os.urandom(32)
    ring = Keyring(pseudonym_key=os.urandom(32), encryption_keys={"k": key})
    for shown in (repr(ring), str(ring), f"{ring}"):
        assert b64(key) not in shown
        assert key.hex() not in shown
        assert "k" in shown
    with pytest.raises(TypeError):
        pickle.dumps(ring)


def test_keyring_from_file_and_env(tmp_path: Path) -> None:
    pseudo, k1, k2 = os.urandom(32), os.urandom(32), os.urandom(32)
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"pseudonym_key: {b64(pseudo)}\n"
        f"encryption_keys: {{k1: {b64(k1)}, k2: {b64(k2)}}}\n"
        "current_key_id: k1\n"
    )
    from_file = Keyring.from_file(path)
    assert from_file.current_key_id == "k1"
    assert from_file.key_ids == {"k1", "k2"}
    from_env = Keyring.from_env(
        {
            "AGOGOSML_PII_PSEUDONYM_KEY": b64(pseudo),
            "AGOGOSML_PII_ENCRYPTION_KEYS": f"k1:{b64(k1)},k2:{b64(k2)}",
        }
    )
    assert from_env.current_key_id == "k2"  # the last listed
    token = encrypt_value("v", from_env, key_id="k1")
    assert decrypt_value(token, from_file) == "v"
    assert Pseudonymizer(from_file.pseudonym_key())("v") == Pseudonymizer(pseudo)("v")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGOGOSML_PII_PSEUDONYM_KEY": "not base64!"}, "pseudonym: not valid base64"),
        ({"AGOGOSML_PII_PSEUDONYM_KEY": b64(b"short")}, "5 bytes, need 32"),
        ({"AGOGOSML_PII_ENCRYPTION_KEYS": "nocolon"}, "id:base64"),
        ({"AGOGOSML_PII_ENCRYPTION_KEYS": f"bad.id:{b64(bytes(32))}"}, "key id 'bad.id'"),
        (
            {"AGOGOSML_PII_ENCRYPTION_KEYS": f"a:{b64(bytes(32))}",
             "AGOGOSML_PII_CURRENT_KEY_ID": "b"},
            "current key id 'b'",
        ),
    ],
)  # fmt: skip
def test_bad_keys_are_refused_with_a_message_that_shows_no_key(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as error:
        Keyring.from_env(env)
    assert bytes(32).hex() not in str(error.value)


def test_the_pseudonym_key_must_not_be_an_encryption_key() -> None:
    key = os.urandom(32)
    with pytest.raises(PolicyError, match="differ"):
        Keyring(pseudonym_key=key, encryption_keys={"k": key})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a list", "expected a mapping"),
        ("pseudonym_keys: x", "unknown entries"),
        ("encryption_keys: [x]", "encryption_keys must be a mapping"),
        ("encryption_keys: {k: 'AAAA'}", "key k: 3 bytes"),
        ("{", "cannot read"),
    ],
)
def test_bad_keyring_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError, match=message):
        Keyring.from_file(path)
    with pytest.raises(PolicyError, match="cannot read"):
        Keyring.from_file(tmp_path / "missing.yaml")
