"""The reader's privacy stage: the PII policy applied to each event before it leaves.

The event's subject becomes its pseudonym here, so everything downstream (the app, the
output, the monitor's store, training data, logs and metrics) sees pseudonyms only. The
subject field itself must be pseudonymized or dropped by the policy: a policy that would let
it through in clear is refused at start-up. A record the policy cannot be applied to is
refused (`privacy_policy`, to dead letters) with the message naming the field, never passed
on half-protected.
"""

from __future__ import annotations

from pathlib import Path

from agogosml.envelope import Event
from agogosml.errors import ConfigurationError, InvalidRecordError
from agogosml.privacy.actions import Pseudonymizer
from agogosml.privacy.engine import PolicyEngine, as_text
from agogosml.privacy.errors import PolicyError, PrivacyError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy, PseudonymizeRule

PRIVACY_REASON = "privacy_policy"


class PrivacyStage:
    """A record transform: `stage(event)` gives the event with the policy applied."""

    def __init__(self, engine: PolicyEngine, keyring: Keyring, subject_field: str | None) -> None:
        policy = engine.policy
        self._engine = engine
        self._subject_field = subject_field
        self._subject_in_payload = False
        self._pseudonym: Pseudonymizer | None = None
        if subject_field is None:
            return
        rule = policy.fields.get(subject_field)
        if isinstance(rule, PseudonymizeRule):
            # The payload keeps the pseudonym: take the event's subject from it.
            self._subject_in_payload = True
            return
        action = policy.default if rule is None else rule.action
        if action != "drop":
            raise ConfigurationError(
                f"the privacy policy must pseudonymize or drop the subject field "
                f"{subject_field!r}: it would otherwise leave the reader in clear")
        try:
            self._pseudonym = Pseudonymizer(keyring.pseudonym_key())
        except PrivacyError as error:
            raise ConfigurationError(f"the subject is pseudonymized: {error}") from None

    def __call__(self, event: Event) -> Event:
        try:
            payload = self._engine.apply(event.payload)
            subject = self._subject(event, payload)
        except PolicyError as error:
            raise InvalidRecordError(PRIVACY_REASON, str(error)) from None
        return Event(id=event.id, time_ms=event.time_ms, payload=payload, subject=subject)

    def _subject(self, event: Event, protected: dict[str, object]) -> str | None:
        if event.subject is None or self._subject_field is None:
            return None
        if self._subject_in_payload:
            value = protected.get(self._subject_field)
            return value if isinstance(value, str) else None
        assert self._pseudonym is not None
        original = event.payload.get(self._subject_field)
        return self._pseudonym(as_text(original, self._subject_field, "pseudonymize"))


def load_stage(policy_path: Path, keyring_path: Path | None,
               subject_field: str | None) -> PrivacyStage:
    """The stage from a policy file and a keyring file (a mounted Secret), or the keyring's
    environment variables (AGOGOSML_PII_*) without one; ConfigurationError if either is
    wrong, so the reader fails at start-up rather than pass data through unprotected."""
    try:
        policy = Policy.from_file(policy_path)
        keyring = Keyring.from_file(keyring_path) if keyring_path else Keyring.from_env()
        engine = PolicyEngine(policy, keyring)
    except PrivacyError as error:
        raise ConfigurationError(f"privacy stage: {error}") from None
    return PrivacyStage(engine, keyring, subject_field)
