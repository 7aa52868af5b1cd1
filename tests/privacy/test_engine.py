"""The policy engine on records: every action, nested paths, the default for unnamed fields,
non-string values, and, for any JSON record, no protected value coming out in clear."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.privacy.actions import decrypt_value, is_token
from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.errors import PolicyError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy
from agogosml.privacy.recognizers import Span
from tests.privacy import ids

POLICY = """
fields:
  name: redact
  nickname: {action: redact, placeholder: "***"}
  card: {action: mask, keep_last: 4, mask_char: "#"}
  email: pseudonymize
  iban: encrypt
  notes: scan
  debug: drop
  amount: keep
  customer.ssn: redact
  customer.address.city: drop
"""


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(pseudonym_key=os.urandom(32), encryption_keys={"k1": os.urandom(32)})


@pytest.fixture
def engine(keyring: Keyring) -> PolicyEngine:
    return PolicyEngine(Policy.from_yaml(POLICY), keyring)


def test_every_action(engine: PolicyEngine, keyring: Keyring) -> None:
    card, iban = ids.card(random.Random(1)), ids.iban(random.Random(2), "NL")
    record: dict[str, Any] = {
        "name": "Ann de Vries",
        "nickname": "annie",
        "card": card,
        "email": "ann@example.com",
        "iban": iban,
        "notes": "Mail ann@example.com or call +31 6 12345678 about the refund.",
        "debug": {"raw": card},
        "amount": 12.5,
        "country": "NL",
        "customer": {"ssn": "123-45-6789", "address": {"city": "Utrecht", "zip": "3511"}},
    }
    out = engine.apply(record)
    assert out["name"] == "[REDACTED]"
    assert out["nickname"] == "***"
    assert out["card"] == "#" * (len(card) - 4) + card[-4:]
    assert out["email"].startswith("ps_")
    assert out["email"] == engine.apply(record)["email"]
    assert is_token(out["iban"])
    assert decrypt_value(out["iban"], keyring) == iban
    assert out["notes"] == "Mail <EMAIL> or call <PHONE> about the refund."
    assert "debug" not in out
    assert out["amount"] == 12.5
    assert out["country"] == "NL"
    assert out["customer"] == {"ssn": "[REDACTED]", "address": {"zip": "3511"}}
    assert record["customer"]["address"]["city"] == "Utrecht"  # the input is untouched


def test_pseudonyms_join_across_records_and_fields(engine: PolicyEngine) -> None:
    a = engine.apply({"email": "bob@example.com", "x": 1})
    b = engine.apply({"email": "bob@example.com", "x": 2})
    assert a["email"] == b["email"]


def test_default_drop_keeps_only_named_fields(keyring: Keyring) -> None:
    policy = Policy.from_yaml("default: drop\nfields: {id: keep, user.email: redact}")
    out = PolicyEngine(policy, keyring).apply(
        {"id": 1, "secret": "s", "user": {"email": "a@b.io", "phone": "+31 6 12345678"}}
    )
    assert out == {"id": 1, "user": {"email": "[REDACTED]"}}


def test_missing_fields_and_nulls(engine: PolicyEngine) -> None:
    assert engine.apply({}) == {}
    out = engine.apply({"name": None, "card": None, "email": None, "iban": None, "debug": None})
    assert out == {"name": None, "card": None, "email": None, "iban": None}


def test_numbers_and_booleans_are_protected_as_their_json_text(engine: PolicyEngine) -> None:
    out = engine.apply({"card": 4111111111111111, "email": True, "notes": 123456782})
    assert out["card"] == "############1111"
    assert out["email"] == engine.apply({"email": "true"})["email"]
    assert out["notes"] == "<NL_BSN>"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"card": ["4111"]}, "card"),
        ({"email": {"a": 1}}, "email"),
        ({"notes": [1]}, "notes"),
        ({"customer": "123-45-6789"}, "customer"),
        ({"customer": {"address": ["Utrecht"]}}, "customer.address"),
    ],
)
def test_values_a_text_action_cannot_take_refuse_the_record(
    engine: PolicyEngine, record: dict[str, Any], field: str
) -> None:
    with pytest.raises(PolicyError, match=f"field {field}:"):
        engine.apply(record)


def test_containers_can_be_redacted_encrypted_or_dropped(
    engine: PolicyEngine, keyring: Keyring
) -> None:
    out = engine.apply({"name": ["a", "b"], "iban": {"n": [1]}, "debug": [1]})
    assert out["name"] == "[REDACTED]"
    assert decrypt_value(out["iban"], keyring) == {"n": [1]}
    assert "debug" not in out


def test_a_policy_needing_a_missing_key_is_refused_at_start() -> None:
    with pytest.raises(PolicyError, match="pseudonym key"):
        PolicyEngine(Policy.from_yaml("fields: {e: pseudonymize}"), Keyring())
    with pytest.raises(PolicyError, match="current key"):
        PolicyEngine(Policy.from_yaml("fields: {e: encrypt}"))


def test_scan_restricted_to_entities(keyring: Keyring) -> None:
    policy = Policy.from_yaml("fields: {t: {action: scan, entities: [EMAIL]}}")
    out = PolicyEngine(policy, keyring).apply({"t": "a@b.io, +31 6 12345678"})
    assert out["t"] == "<EMAIL>, +31 6 12345678"


class FakeNer:
    """An NER analyzer behind the same protocol the structured recognizers implement."""

    def analyze(self, text: str) -> Sequence[Span]:
        at = text.find("Ann")
        return [] if at < 0 else [Span(at, at + 3, "PERSON", 0.8)]


def test_an_ner_analyzer_plugs_into_scan(keyring: Keyring) -> None:
    from agogosml.privacy.recognizers import StructuredAnalyzer

    policy = Policy.from_yaml("fields: {t: scan}")
    engine = PolicyEngine(policy, keyring, analyzers=[StructuredAnalyzer(), FakeNer()])
    assert engine.apply({"t": "Ann: a@b.io"}) == {"t": "<PERSON>: <EMAIL>"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fields: {card: {action: mask, keep_last: '4'}}", "field card: mask.keep_last"),
        ("fields: {card: {action: mask, mask_char: '**'}}", "field card: mask.mask_char"),
        ("fields: {card: explode}", "field card: .*'explode'"),
        ("fields: {card: {action: redact, colour: red}}", "field card: redact.colour"),
        ("fields: {notes: {action: scan, entities: [NAME]}}", "field notes: .*NAME"),
        ("fields: {a: drop, a.b: keep}", "'a.b' is inside field 'a'"),
        ("fields: {'a..b': drop}", "empty name"),
        ("default: maybe", "default"),
        ("fields: [", "not valid YAML"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_yaml(text)


def test_policies_are_frozen() -> None:
    policy = Policy.from_yaml("fields: {a: drop}")
    with pytest.raises(ValueError, match="frozen"):
        policy.default = "drop"


json_scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=40)
json_scalars |= st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = ["a", "b", "c", "n.x", "n.y"]
ACTIONS = ["drop", "keep", "redact", "mask", "pseudonymize", "encrypt", "scan"]
KEYRING = Keyring(pseudonym_key=os.urandom(32), encryption_keys={"k": os.urandom(32)})


def replacement_of(action: str, value: str, out: Any) -> bool:
    """Whether the protected output equals the input only because the action maps it to
    itself (a text with no entity under scan, a value that already is the placeholder)."""
    return action == "scan" or value in ("[REDACTED]", "*" * len(value))


@settings(max_examples=300, deadline=None)
@given(
    record=st.dictionaries(st.sampled_from(["a", "b", "c", "n", "z"]), json_values, max_size=5),
    rules=st.dictionaries(
        st.sampled_from(FIELD_NAMES), st.sampled_from(ACTIONS), min_size=1, max_size=4
    ),
    default=st.sampled_from(["keep", "drop"]),
    nested=st.dictionaries(st.sampled_from(["x", "y", "w"]), json_values, max_size=3),
    use_nested=st.booleans(),
)
def test_any_record_is_protected_or_refused(
    record: dict[str, Any],
    rules: dict[str, str],
    default: str,
    nested: dict[str, Any],
    use_nested: bool,
) -> None:
    if use_nested:
        record["n"] = nested
    policy = Policy.from_mapping({"default": default, "fields": rules})
    try:
        out = PolicyEngine(policy, KEYRING).apply(record)
    except PolicyError:
        return
    for path, action in rules.items():
        source: Any = record
        result: Any = out
        for part in path.split("."):
            source = source.get(part) if isinstance(source, dict) else None
            result = result.get(part) if isinstance(result, dict) else None
        if action == "drop":
            assert result is None
        if action in ("keep", "drop") or not isinstance(source, str) or not source:
            continue
        if not replacement_of(action, source, result):
            assert result != source, (path, action)
    if default == "drop":
        assert set(out) <= {path.split(".")[0] for path in rules}


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_scanned_text_never_keeps_an_embedded_entity(before: str, after: str) -> None:
    card = ids.card(random.Random(len(before)))
    text = f"{before} {card} {after}"
    engine = PolicyEngine(Policy.from_yaml("fields: {t: scan}"))
    assert card not in engine.apply({"t": text})["t"]


@pytest.mark.parametrize(
    ("record", "field"),
    [({"iban": "\ud800"}, "iban"), ({"iban": 2**70}, "iban"), ({"iban": {"k": 2**65}}, "iban")],
)
def test_values_json_cannot_carry_are_refused_by_encrypt(
    engine: PolicyEngine, record: dict[str, Any], field: str
) -> None:
    with pytest.raises(PolicyError, match=f"field {field}: cannot encrypt"):
        engine.apply(record)


def test_lone_surrogates_are_still_protected_by_text_actions(engine: PolicyEngine) -> None:
    out = engine.apply({"email": "\ud800x", "card": "\ud800abcdef", "notes": "\ud800 a@b.io"})
    assert out["email"].startswith("ps_")
    assert out["card"] == "###cdef"
    assert out["notes"] == "\ud800 <EMAIL>"


def test_a_record_that_is_not_an_object_is_refused(engine: PolicyEngine) -> None:
    with pytest.raises(PolicyError, match="record"):
        engine.apply([1, 2])  # type: ignore[arg-type]
