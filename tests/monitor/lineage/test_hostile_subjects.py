"""Property: any text is either recorded as a subject and found again exactly, or refused
with an InvalidSubjectError that says why (both backends)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agogosml.privacy.lineage import InvalidSubjectError, SqlLineageIndex, check_subject
from agogosml.privacy.lineage.subjects import MAX_SUBJECT_CHARS

# Every code point, lone surrogates included, around the length limit too.
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=MAX_SUBJECT_CHARS + 4)
LOOKALIKES = st.sampled_from(["p1", "P1", "p1 ", "\uff501", "é", "e\u0301", "%", "_", "a/b", "'"])


def valid(text: str) -> bool:
    return (0 < len(text) <= MAX_SUBJECT_CHARS and "\x00" not in text
            and not any(0xD800 <= ord(c) <= 0xDFFF for c in text))


class Recorded:
    """What the test recorded in its index, across Hypothesis' examples (the index lives
    as long as the test function)."""

    def __init__(self) -> None:
        self.runs: dict[str, set[str]] = {}
        self.numbers = itertools.count()


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subjects=st.lists(ANY_TEXT | LOOKALIKES, min_size=1, max_size=4))
@example(subjects=["x" * MAX_SUBJECT_CHARS, "x" * (MAX_SUBJECT_CHARS + 1)])
@example(subjects=["", "\x00", "\ud800", "ok"])
def test_any_subject_is_found_again_exactly_or_refused(
        index: SqlLineageIndex, recorded: Recorded, subjects: list[str]) -> None:
    for subject in subjects:
        run_id = f"run-{next(recorded.numbers)}"
        if not valid(subject):
            with pytest.raises(InvalidSubjectError):
                index.record_run(run_id, "fraud", "sha256:d", [subject])
            with pytest.raises(InvalidSubjectError):
                index.versions_for(subject)
            continue
        assert index.record_run(run_id, "fraud", "sha256:d", [subject]) == 1
        index.record_version(run_id, "fraud", run_id)
        assert run_id in [r.run_id for r in index.runs_for(subject)]
        expected = recorded.runs.setdefault(subject, set())
        expected.add(run_id)
        # Exactly its own runs: no case folding, normalization, trimming or pattern matching.
        assert {v.run_id for v in index.versions_for(subject)} == expected


def test_the_refusal_says_why() -> None:
    for hostile, reason in [("", "empty"), ("a\x00b", "NUL"), ("\udc80", "surrogate"),
                            ("x" * 129, "at most 128"), (42, "string")]:
        with pytest.raises(InvalidSubjectError, match=reason):
            check_subject(hostile)


