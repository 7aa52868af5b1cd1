"""What a subject may be, and the subjects of a training dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agogosml.errors import BadRequestError
from agogosml.privacy.errors import PrivacyError

if TYPE_CHECKING:  # pandas only where training runs: `agogosml gdpr` works without it
    import pandas as pd

MAX_SUBJECT_CHARS = 128


class LineageError(PrivacyError):
    """The lineage index cannot do what was asked (unknown run, conflicting record)."""


class InvalidSubjectError(LineageError, BadRequestError):
    """A subject or identifier no backend can hold; the message says why."""


def check_identifier(value: object, name: str, max_chars: int | None = None) -> str:
    """`value` if every backend stores it and finds it again exactly, else refused.
    PostgreSQL text holds neither NUL nor, like SQLite's UTF-8, lone surrogates."""
    if not isinstance(value, str):
        raise InvalidSubjectError(f"{name} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidSubjectError(f"{name} is empty")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidSubjectError(f"{name} has {len(value)} characters, at most {max_chars}")
    if "\x00" in value:
        raise InvalidSubjectError(f"{name} holds a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidSubjectError(f"{name} is not valid Unicode (a lone surrogate)") from None
    return value


def check_subject(value: object) -> str:
    return check_identifier(value, "subject", MAX_SUBJECT_CHARS)


def dataset_subjects(frame: pd.DataFrame, column: str) -> list[str]:
    """The pseudonymized subjects of a training dataset, unique and sorted. Rows without a
    subject are left out (they belong to nobody); any other value that is not a valid
    subject refuses the whole dataset, so no run is recorded with a subject missing."""
    if column not in frame.columns:
        raise LineageError(f"the dataset has no subject column {column!r}")
    values = frame[column].dropna().unique()
    return sorted(check_subject(value) for value in values)
