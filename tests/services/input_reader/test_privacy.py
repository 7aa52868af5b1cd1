"""The reader's privacy stage: the demo policy on demo records, the subject as a pseudonym
that matches the payload's, policies that would leak the subject refused at start-up, and
for any record either a protected event or a `privacy_policy` refusal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.demo.data import transactions
from agogosml.envelope import Event
from agogosml.errors import ConfigurationError, InvalidRecordError, StoreUnavailableError
from agogosml.localstack.stack import privacy_policy
from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.keyfile import ensure_keyring_file
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy
from agogosml.privacy.subjectkeys import open_subject_keys
from agogosml.services.input_reader.privacy import PRIVACY_REASON, PrivacyStage, load_privacy

PERSONAL = ("customer_id", "name", "email", "phone")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(pseudonym_key=os.urandom(32), encryption_keys={"k1": os.urandom(32)})


def stage_for(policy: str, keyring: Keyring, subject_field: str | None = "customer_id",
              ) -> PrivacyStage:
    return PrivacyStage(PolicyEngine(Policy.from_yaml(policy), keyring), keyring, subject_field)


def event_of(payload: dict[str, Any], subject_field: str = "customer_id") -> Event:
    subject = payload.get(subject_field)
    return Event(id="e1", time_ms=1, payload=payload,
                 subject=None if subject is None else str(subject))


def test_the_demo_policy_leaves_no_personal_value_in_clear(tmp_path: Path) -> None:
    keyring_path = tmp_path / "keyring.yaml"
    assert ensure_keyring_file(keyring_path)
    assert keyring_path.stat().st_mode & 0o777 == 0o600
    stage = load_privacy(privacy_policy(), keyring_path, "customer_id").stage
    rows = transactions(200, seed=3).to_dict("records")
    subjects: dict[str, str] = {}
    for row in rows:
        out = stage(event_of({str(k): v for k, v in row.items()}))
        encoded = orjson.dumps(out.to_json(), option=orjson.OPT_SERIALIZE_NUMPY)
        for field in PERSONAL:
            assert str(row[field]).encode() not in encoded, field
        assert out.subject is not None
        assert out.subject.startswith("ps_")
        assert out.payload["customer_id"] == out.subject
        assert out.payload["phone"].endswith(str(row["phone"])[-2:])
        assert out.payload["amount"] == row["amount"]  # features pass untouched
        # The same person always gets the same pseudonym, and different people different ones.
        assert subjects.setdefault(str(row["customer_id"]), out.subject) == out.subject
    assert len(set(subjects.values())) == len(subjects)


def test_the_keyring_file_is_kept_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "keyring.yaml"
    assert ensure_keyring_file(path)
    first = path.read_text()
    assert not ensure_keyring_file(path)
    assert path.read_text() == first


def test_a_dropped_subject_field_still_gives_a_pseudonymous_subject(keyring: Keyring) -> None:
    stage = stage_for("fields: {customer_id: drop}", keyring)
    out = stage(event_of({"customer_id": "C1", "amount": 3}))
    assert "customer_id" not in out.payload
    assert out.subject is not None
    assert out.subject.startswith("ps_")
    assert "C1" not in out.subject
    again = stage(event_of({"customer_id": "C1", "amount": 4}))
    assert again.subject == out.subject


@pytest.mark.parametrize("policy", [
    "fields: {name: redact}",                          # default keep: the subject passes
    "fields: {customer_id: keep}",
    "fields: {customer_id: {action: mask, keep_last: 2}}",
    "fields: {customer_id: encrypt}",
])
def test_a_policy_that_lets_the_subject_through_is_refused(policy: str,
                                                           keyring: Keyring) -> None:
    with pytest.raises(ConfigurationError, match="customer_id"):
        stage_for(policy, keyring)


def test_a_default_drop_policy_protects_an_unnamed_subject(keyring: Keyring) -> None:
    stage = stage_for("default: drop\nfields: {amount: keep}", keyring)
    out = stage(event_of({"customer_id": "C9", "amount": 1, "email": "a@b.example"}))
    assert out.payload == {"amount": 1}
    assert out.subject is not None
    assert out.subject.startswith("ps_")


def test_missing_keys_fail_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "keyring.yaml"
    empty.write_text("encryption_keys: {}\n")
    with pytest.raises(ConfigurationError, match="pseudonym"):
        load_privacy(privacy_policy(), empty, "customer_id")


def test_a_record_the_policy_cannot_take_is_refused_with_the_field(keyring: Keyring) -> None:
    stage = stage_for("fields: {customer_id: pseudonymize, email: pseudonymize}", keyring)
    with pytest.raises(InvalidRecordError) as refused:
        stage(event_of({"customer_id": "C1", "email": {"nested": "x@y.example"}}))
    assert refused.value.reason == PRIVACY_REASON
    assert "email" in refused.value.detail
    assert "x@y.example" not in refused.value.detail


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.sampled_from([*PERSONAL, "amount", "note"]), JSON),
       subject=st.one_of(st.none(), st.text(min_size=1), st.integers()))
def test_any_record_is_protected_or_refused(payload: dict[str, Any], subject: Any) -> None:
    keyring = Keyring(pseudonym_key=b"k" * 32, encryption_keys={"k1": b"e" * 32})
    stage = stage_for(privacy_policy().read_text(), keyring)
    if subject is not None:
        payload["customer_id"] = subject
    try:
        out = stage(event_of(payload))
    except InvalidRecordError as refused:
        reason = refused.reason
        assert reason == PRIVACY_REASON
        return
    if isinstance(subject, str | int):
        assert out.subject is not None
        assert out.subject.startswith("ps_")
        assert out.payload["customer_id"] == out.subject
    if isinstance(payload.get("name"), str):
        assert out.payload["name"] == "[REDACTED]"


def test_an_unreachable_subject_key_store_is_an_outage_not_a_bad_record(tmp_path: Path) -> None:
    keyring = Keyring(pseudonym_key=os.urandom(32), encryption_keys={"2026-12": os.urandom(32)})
    keys = open_subject_keys(f"sqlite:///{tmp_path / 'privacy.db'}",
                             Keyring(encryption_keys={"kek": os.urandom(32)}))
    engine = PolicyEngine(Policy.from_yaml("fields: {customer_id: pseudonymize, iban: encrypt}"),
                          keyring, subject_keys=keys)
    stage = PrivacyStage(engine, keyring, "customer_id")
    record = {"customer_id": "C1", "iban": "NL91ABNA0417164300"}
    assert stage(event_of(record)).payload["iban"].startswith("enc1:s-")
    keys.close()  # the database is gone from under the reader
    with pytest.raises(StoreUnavailableError, match="iban"):
        stage(event_of({**record, "customer_id": "C2"}))  # a subject not cached yet
