"""The reader's privacy stage: the PII policy applied to each event before it leaves.

The event's subject becomes its pseudonym here, so everything downstream (the app, the
output, the monitor's store, training data, logs and metrics) sees pseudonyms only. The
subject field itself must be pseudonymized or dropped by the policy: a policy that would let
it through in clear is refused at start-up. A record the policy cannot be applied to is
refused (`privacy_policy`, to dead letters) with the message naming the field, never passed
on half-protected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agogosml.envelope import Event
from agogosml.errors import ConfigurationError, InvalidRecordError
from agogosml.privacy.actions import Pseudonymizer
from agogosml.privacy.engine import PolicyEngine, as_text
from agogosml.privacy.errors import PolicyError, PrivacyError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy, PseudonymizeRule
from agogosml.privacy.sealing import Sealer
from agogosml.privacy.subjectkeys import SubjectKeyStore, open_subject_keys
from agogosml.services.input_reader.settings import ReaderStreamSettings

PRIVACY_REASON = "privacy_policy"
MAX_SUBJECT_SCAN_BYTES = 1 << 20
"""Larger refused records are sealed under the period key rather than parsed again."""


class PrivacyStage:
    """A record transform: `stage(event)` gives the event with the policy applied."""

    def __init__(self, engine: PolicyEngine, keyring: Keyring, subject_field: str | None) -> None:
        policy = engine.policy
        self._engine = engine
        self._subject_field = subject_field
        self._pseudonym: Pseudonymizer | None = None
        if subject_field is None:
            return
        rule = policy.fields.get(subject_field)
        action = policy.default if rule is None else rule.action
        if action not in ("pseudonymize", "drop"):
            raise ConfigurationError(
                f"the privacy policy must pseudonymize or drop the subject field "
                f"{subject_field!r}: it would otherwise leave the reader in clear")
        try:
            # The policy's own prefix, so the payload's pseudonym and the subject agree.
            self._pseudonym = Pseudonymizer(
                keyring.pseudonym_key(),
                rule.prefix if isinstance(rule, PseudonymizeRule) else "ps_")
        except PrivacyError as error:
            raise ConfigurationError(f"the subject is pseudonymized: {error}") from None

    def subject_of(self, payload: dict[str, Any]) -> str | None:
        """The pseudonym of a record's subject (None without one); PolicyError for a subject
        that is not text or a number."""
        if self._pseudonym is None or self._subject_field is None:
            return None
        value = payload.get(self._subject_field)
        if value is None:
            return None
        return self._pseudonym(as_text(value, self._subject_field, "pseudonymize"))

    def subject_of_record(self, value: bytes) -> str | None:
        """The pseudonym of a raw record's subject, if it has one that can be read: what a
        refused record's dead letter is sealed under (None: the period key)."""
        if len(value) > MAX_SUBJECT_SCAN_BYTES:
            return None
        try:
            payload = orjson.loads(value)
            return self.subject_of(payload) if isinstance(payload, dict) else None
        except (orjson.JSONDecodeError, PolicyError):
            return None

    def __call__(self, event: Event) -> Event:
        try:
            subject = self.subject_of(event.payload) if event.subject is not None else None
            # The subject's own key encrypts its fields, so shredding it makes them unreadable.
            payload = self._engine.apply(event.payload, subject=subject)
        except PolicyError as error:
            raise InvalidRecordError(PRIVACY_REASON, str(error)) from None
        return Event(id=event.id, time_ms=event.time_ms, payload=payload, subject=subject)


@dataclass(frozen=True)
class ReaderPrivacy:
    """What the reader's privacy settings make: the stage, and the keys its dead letters are
    sealed with."""

    stage: PrivacyStage
    sealer: Sealer
    subject_keys: SubjectKeyStore | None


def load_privacy(policy_path: Path, keyring_path: Path | None, subject_field: str | None,
                 subject_keys_url: str | None = None,
                 kek_path: Path | None = None) -> ReaderPrivacy:
    """The stage from a policy file and a keyring file (a mounted Secret), or the keyring's
    environment variables (AGOGOSML_PII_*) without one, and the subjects' keys if a store is
    named; ConfigurationError if anything is wrong, so the reader fails at start-up rather
    than pass data through unprotected."""
    try:
        policy = Policy.from_file(policy_path)
        keyring = Keyring.from_file(keyring_path) if keyring_path else Keyring.from_env()
        subject_keys = None
        if subject_keys_url is not None and kek_path is not None:
            subject_keys = open_subject_keys(subject_keys_url, Keyring.from_file(kek_path))
        engine = PolicyEngine(policy, keyring, subject_keys=subject_keys)
        sealer = Sealer(keyring, subject_keys)
    except PrivacyError as error:
        raise ConfigurationError(f"privacy stage: {error}") from None
    return ReaderPrivacy(PrivacyStage(engine, keyring, subject_field), sealer, subject_keys)



def privacy_from_settings(settings: ReaderStreamSettings) -> ReaderPrivacy | None:
    """The reader's privacy stage and sealer as its settings say; None without a policy."""
    if settings.privacy_policy_path is None:
        return None
    url = settings.subject_keys_url
    return load_privacy(settings.privacy_policy_path, settings.privacy_keyring_path,
                        settings.subject_field, None if url is None else url.get_secret_value(),
                        settings.subject_keys_kek_path)
