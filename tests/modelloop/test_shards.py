"""Sharding by subject: stable placement, a holdout no shard has seen, and digests that
change for the shard of a removed subject and for no other."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.demo.data import transactions
from agogosml.modelloop.dataset import DatasetSpec, resolve_schema
from agogosml.modelloop.errors import DatasetError
from agogosml.modelloop.shards import (
    ShardedSplit,
    held_out,
    shard_of,
    shard_rows,
    subject_digest,
    subject_split,
)

SUBJECTS = st.text(min_size=1, max_size=64).filter(lambda text: "\x00" not in text)
SPEC = DatasetSpec()


def demo(rows: int = 3_000, customers: int = 150) -> pd.DataFrame:
    return transactions(rows, 7, customers=customers)


@settings(max_examples=200, deadline=None)
@given(subject=SUBJECTS, shards=st.integers(min_value=1, max_value=1_000))
def test_a_subjects_shard_is_in_range_and_is_sha256_of_its_pseudonym(subject: str,
                                                                      shards: int) -> None:
    shard = shard_of(subject, shards)
    assert 0 <= shard < shards
    assert shard == shard_of(subject, shards)
    assert shard == int(hashlib.sha256(subject.encode()).hexdigest(), 16) % shards


@settings(max_examples=100, deadline=None)
@given(subject=SUBJECTS, seed=st.integers(0, 2**31), fraction=st.floats(0.01, 0.99))
def test_held_out_is_a_function_of_subject_seed_and_fraction(subject: str, seed: int,
                                                            fraction: float) -> None:
    assert held_out(subject, fraction, seed) == held_out(subject, fraction, seed)
    # A larger fraction holds out everything a smaller one did.
    assert not held_out(subject, fraction, seed) or held_out(subject, min(fraction * 1.5, 1.0),
                                                             seed)


def test_no_shard_count_below_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        shard_of("ps_a", 0)


def test_a_subjects_rows_are_all_held_out_or_all_in_its_one_shard() -> None:
    frame = demo()
    split = subject_split(frame, resolve_schema(frame, SPEC), "customer_id", 0.25, 7, 5)
    train_subjects = set(split.train_subjects)
    holdout_subjects = set(frame.loc[split.split.holdout_x.index, "customer_id"])
    assert not train_subjects & holdout_subjects
    assert train_subjects | holdout_subjects == set(frame["customer_id"])
    placed = pd.DataFrame({"subject": split.train_subjects.to_numpy(),
                           "shard": split.train_shards})
    assert (placed.groupby("subject")["shard"].nunique() == 1).all()
    assert all(shard_of(subject, 5) == shard for subject, shard
               in placed.drop_duplicates("subject").itertuples(index=False))
    assert 0.15 < len(split.split.holdout_x) / len(frame) < 0.35


@settings(max_examples=15, deadline=None)
@given(pick=st.integers(0, 10_000))
def test_removing_a_subject_changes_its_shards_digests_and_no_others(pick: int) -> None:
    frame = demo(1_500, 60)
    schema = resolve_schema(frame, SPEC)
    before = shard_rows(subject_split(frame, schema, "customer_id", 0.25, 7, 4))
    subjects = sorted(frame["customer_id"].unique())
    gone = subjects[pick % len(subjects)]
    after = shard_rows(subject_split(frame[frame["customer_id"] != gone], schema,
                                     "customer_id", 0.25, 7, 4))
    changed = {old.index for old, new in zip(before, after, strict=True)
               if (old.subject_digest, old.row_digest) != (new.subject_digest, new.row_digest)}
    expected = set() if held_out(gone, 0.25, 7) else {shard_of(gone, 4)}
    assert changed == expected


def test_rows_without_a_subject_keep_their_shard_and_side_when_other_rows_go() -> None:
    frame = demo(2_000, 80)
    frame.loc[frame.index % 10 == 0, "customer_id"] = None
    schema = resolve_schema(frame, SPEC)
    whole = subject_split(frame, schema, "customer_id", 0.25, 7, 3)
    smaller = subject_split(frame.iloc[1:], schema, "customer_id", 0.25, 7, 3)

    def placement(split: ShardedSplit) -> dict[int, int]:
        """Shard by row label of the trained rows without a subject."""
        return {int(label): int(shard) for label, subject, shard
                in zip(split.split.train_x.index, split.train_subjects, split.train_shards,
                       strict=True) if pd.isna(subject)}

    anonymous = placement(whole)
    assert anonymous, "some subject-less rows are trained on"
    assert placement(smaller) == {label: shard for label, shard in anonymous.items()
                                  if label != 0}
    assert set(anonymous.values()) <= {0, 1, 2}


def test_subject_digests_ignore_order_and_repeats() -> None:
    assert subject_digest(["ps_b", "ps_a", "ps_b"]) == subject_digest(["ps_a", "ps_b"])
    assert subject_digest(["ps_a"]) != subject_digest(["ps_a", "ps_b"])
    assert subject_digest(["ab", "c"]) != subject_digest(["a", "bc"])


def test_too_many_shards_for_the_rows_is_refused_by_shard() -> None:
    frame = demo(200, 40)
    split = subject_split(frame, resolve_schema(frame, SPEC), "customer_id", 0.25, 7, 40)
    with pytest.raises(DatasetError, match=r"shard \d+ of 40 has \d+ training rows and not "
                                           "both classes: use fewer shards"):
        shard_rows(split)


def test_sharded_training_needs_the_subject_column() -> None:
    frame = demo(300, 20).drop(columns="customer_id")
    with pytest.raises(DatasetError, match="needs the subject column 'customer_id'"):
        subject_split(frame, resolve_schema(frame, SPEC), "customer_id", 0.25, 7, 2)


def test_the_subject_is_never_a_feature() -> None:
    frame = demo(300, 20)
    spec = DatasetSpec(personal_fields=("name",), features=("amount", "customer_id"))
    with pytest.raises(DatasetError, match="subject column customer_id cannot be a feature"):
        resolve_schema(frame, spec)
