"""Applies a privacy policy to records: `PolicyEngine(policy, keyring).apply(record)`.

Behaviour a caller relies on:
- `apply` returns a new top-level dict; nested objects on a policy path are copied, other
  values are shared with the input, which is never modified.
- Fields the policy does not name follow `policy.default`: kept, or dropped (an allow-list;
  a nested object then keeps only the named fields under it).
- A dotted path ("customer.email") addresses a field of a nested object (so a key that
  itself contains a dot cannot be named). A missing field is skipped. A path running
  through a value that is not an object (a list, a string) refuses the record: the
  policy's view of the record is wrong, so passing it on would be unsafe.
- null stays null under every action but drop (nothing to protect).
- redact, drop, keep and encrypt take any JSON value (encrypt round-trips its type).
  mask, pseudonymize and scan work on text: strings as they are, numbers and booleans as
  their JSON text ("12", "true"); an object or a list refuses the record.
- Refusals raise PolicyError naming the field; an unreachable subject key store raises
  StoreUnavailableError (an outage to retry); `apply` raises nothing else.
- Crypto-shredding per subject: given a subject key store (`subject_keys`), `apply(record,
  subject=pseudonym)` encrypts under that subject's own key ("enc1:s-…"), so shredding the
  subject makes those fields unreadable; a shredded subject's record is refused. Records
  without a subject use the keyring's current (period) key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

import orjson

from agogosml.errors import StoreUnavailableError
from agogosml.privacy.actions import Pseudonymizer, encrypt_value, mask
from agogosml.privacy.errors import PolicyError, PrivacyError
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import (
    EncryptRule,
    KeepRule,
    MaskRule,
    Policy,
    PseudonymizeRule,
    RedactRule,
    Rule,
    ScanRule,
)
from agogosml.privacy.presidio import analyzers_for
from agogosml.privacy.recognizers import Span, cover
from agogosml.privacy.subjectkeys import SubjectKeys, SubjectKeyStoreError, check_period_keyring

# The subject of the record `apply` is working on, for encrypt (thread- and task-safe).
_SUBJECT: ContextVar[str | None] = ContextVar("agogosml_privacy_subject", default=None)


class Analyzer(Protocol):
    """Finds entities in free text: the structured recognizers, later an NER model."""

    def analyze(self, text: str) -> Sequence[Span]: ...


class _Drop:
    """Marks a field to leave out of the result."""


DROP = _Drop()
Transform = Callable[[Any, str], Any]
# A compiled policy: field name -> transform, or the subtree for a nested object.
Tree = dict[str, "Transform | Tree"]


def as_text(value: Any, path: str, action: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # also past 64 bits, which orjson cannot write
    if isinstance(value, bool | float):
        return orjson.dumps(value).decode("ascii")
    raise PolicyError(f"field {path}: cannot {action} a {type(value).__name__}")


class Scanner:
    """Replaces each entity the analyzers find in a text by "<ENTITY>"."""

    def __init__(self, analyzers: Sequence[Analyzer], rule: ScanRule) -> None:
        self._analyzers = [a for a in analyzers if _may_find(a, rule.entities)]
        self._entities = rule.entities
        self._min_score = rule.min_score

    def __call__(self, text: str) -> str:
        found = (
            span
            for analyzer in self._analyzers
            for span in analyzer.analyze(text)
            if span.score >= self._min_score
            and (self._entities is None or span.entity in self._entities)
        )
        # cover, not resolve: two analyzers' spans may overlap in part.
        spans = cover(text, found)
        if not spans:
            return text
        pieces: list[str] = []
        cursor = 0
        for span in spans:
            pieces += (text[cursor : span.start], f"<{span.entity}>")
            cursor = span.end
        pieces.append(text[cursor:])
        return "".join(pieces)


def _may_find(analyzer: Analyzer, wanted: frozenset[str] | None) -> bool:
    """False for an analyzer that says which entities it reports (an `entities` attribute)
    and has none of those wanted: a scan for EMAIL alone does not run the NER model."""
    reported = getattr(analyzer, "entities", None)
    return wanted is None or not isinstance(reported, frozenset) or bool(wanted & reported)


def _scan(scan: Scanner, value: Any, path: str) -> str:
    text = as_text(value, path, "scan")
    try:
        return scan(text)
    except PolicyError as exc:  # an analyzer refused the text
        raise PolicyError(f"field {path}: {exc}") from None


class PolicyEngine:
    """A policy compiled once, with its keys and analyzers, applied per record."""

    def __init__(
        self,
        policy: Policy,
        keyring: Keyring | None = None,
        analyzers: Iterable[Analyzer] | None = None,
        *,
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        self._policy = policy
        self._keyring = keyring or Keyring()
        self._subject_keys = subject_keys
        if subject_keys is not None:
            check_period_keyring(self._keyring)
        self._analyzers: tuple[Analyzer, ...] = (
            analyzers_for(policy) if analyzers is None else tuple(analyzers)
        )
        if policy.needs("pseudonymize") and not self._keyring.has_pseudonym_key:
            raise PolicyError("the policy pseudonymizes fields; the keyring has no pseudonym key")
        if policy.needs("encrypt") and self._keyring.current_key_id is None:
            raise PolicyError("the policy encrypts fields but the keyring has no current key")
        self._keep_others = policy.default == "keep"
        self._tree: Tree = {}
        for path, rule in policy.fields.items():
            node = self._tree
            *parents, leaf = path.split(".")
            for part in parents:
                child = node.setdefault(part, {})
                assert isinstance(child, dict)  # Policy refuses a path inside another
                node = child
            node[leaf] = self._transform(rule)

    @property
    def policy(self) -> Policy:
        return self._policy

    def _transform(self, rule: Rule) -> Transform:
        if isinstance(rule, KeepRule):
            return lambda value, path: value
        if isinstance(rule, RedactRule):
            placeholder = rule.placeholder
            return lambda value, path: None if value is None else placeholder
        if isinstance(rule, MaskRule):
            keep_last, mask_char = rule.keep_last, rule.mask_char
            return lambda value, path: (
                None if value is None else mask(as_text(value, path, "mask"), keep_last, mask_char)
            )
        if isinstance(rule, PseudonymizeRule):
            pseudonym = Pseudonymizer(self._keyring.pseudonym_key(), rule.prefix)
            return lambda value, path: (
                None if value is None else pseudonym(as_text(value, path, "pseudonymize"))
            )
        if isinstance(rule, EncryptRule):
            return self._encrypt
        if isinstance(rule, ScanRule):
            scan = Scanner(self._analyzers, rule)
            return lambda value, path: None if value is None else _scan(scan, value, path)
        return lambda value, path: DROP

    def _encrypt(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        try:
            subject = _SUBJECT.get()
            keyring = (self._keyring if subject is None or self._subject_keys is None
                       else self._subject_keys.keyring_for(subject))
            return encrypt_value(value, keyring)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise PolicyError(f"field {path}: cannot encrypt this value ({exc})") from None
        except SubjectKeyStoreError as exc:  # an outage, not this record's fault
            raise StoreUnavailableError(f"field {path}: {exc}") from None
        except PrivacyError as exc:  # a key destroyed or shredded
            raise PolicyError(f"field {path}: {exc}") from None

    def apply(self, record: Mapping[str, Any], subject: str | None = None) -> dict[str, Any]:
        """The record with the policy applied; PolicyError naming the field if it cannot be,
        StoreUnavailableError (retry) if the subject key store cannot be reached.
        `subject`: the record's subject pseudonym, whose key encrypts its fields."""
        if not isinstance(record, Mapping):
            raise PolicyError(f"record: expected an object, got a {type(record).__name__}")
        token = _SUBJECT.set(subject)
        try:
            return self._apply(record, self._tree, "")
        finally:
            _SUBJECT.reset(token)

    def _apply(self, record: Mapping[str, Any], tree: Tree, prefix: str) -> dict[str, Any]:
        result: dict[str, Any] = dict(record) if self._keep_others else {}
        for name, node in tree.items():
            if name not in record:
                continue
            value = record[name]
            path = prefix + name
            if isinstance(node, dict):
                if not isinstance(value, Mapping):
                    raise PolicyError(
                        f"field {path}: the policy names fields inside it, but it is a "
                        f"{type(value).__name__}, not an object"
                    )
                result[name] = self._apply(value, node, path + ".")
                continue
            new = node(value, path)
            if new is DROP:
                result.pop(name, None)
            else:
                result[name] = new
        return result
