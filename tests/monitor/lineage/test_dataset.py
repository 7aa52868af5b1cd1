"""The subjects a training run records: its dataset's pseudonyms, unique and sorted."""

from __future__ import annotations

import pandas as pd
import pytest

from agogosml.privacy.lineage import InvalidSubjectError, LineageError, dataset_subjects


def test_the_subjects_are_unique_and_sorted_without_empty_rows() -> None:
    frame = pd.DataFrame({"card": ["ps_b", "ps_a", None, "ps_b", float("nan")],
                          "amount": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert dataset_subjects(frame, "card") == ["ps_a", "ps_b"]


def test_a_dataset_without_the_column_is_refused_by_name() -> None:
    with pytest.raises(LineageError, match="'card'"):
        dataset_subjects(pd.DataFrame({"amount": [1.0]}), "card")


@pytest.mark.parametrize("bad", [12345, "", "a\x00b", "x" * 129])
def test_one_value_that_is_no_subject_refuses_the_dataset(bad: object) -> None:
    frame = pd.DataFrame({"card": ["ps_a", bad]}, dtype=object)
    with pytest.raises(InvalidSubjectError):
        dataset_subjects(frame, "card")
