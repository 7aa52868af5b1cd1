"""SISA-style sharding of a training set by data subject: which rows each shard model
learns from, which rows are held out, and digests that say whether a shard's rows changed.

- A row with a subject goes to shard `sha256(pseudonym) mod N`, so all of a subject's rows
  are in one shard and forgetting the subject changes that shard alone. A row without a
  subject goes to the shard its row fingerprint (a hash of all its values) picks.
- The holdout is chosen per subject too (a keyed hash of the pseudonym against the holdout
  fraction): a subject's rows are all trained on or all held out, so no shard has seen a
  holdout subject, and removing rows never moves another row across the split. Rows
  without a subject are placed by their fingerprint.
- A shard's subject digest (sha256 of its sorted pseudonyms) and row digest (sha256 of its
  training rows' hashes, in file order) are equal between two training sets exactly when
  the shard would learn from the same rows: then its model may be reused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agogosml.modelloop.dataset import FeatureSchema, Split
from agogosml.modelloop.errors import DatasetError

HOLDOUT_RESOLUTION = 1 << 32
"""A key is held out when its hash, as a fraction of this, is below the holdout fraction."""
SUBJECT_SEPARATOR = b"\x00"
"""Between subjects in a digest: no pseudonym holds a NUL (the lineage index refuses it)."""


def shard_of(subject: str, shards: int) -> int:
    """The shard of a subject: sha256 of its pseudonym's UTF-8 bytes, as an integer, mod N."""
    if shards < 1:
        raise ValueError(f"{shards} shards: at least one is needed")
    return int.from_bytes(hashlib.sha256(subject.encode()).digest(), "big") % shards


def row_fingerprints(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A 64-bit hash of each row's values (not of its position): stable when other rows are
    added or removed."""
    return np.asarray(pd.util.hash_pandas_object(frame, index=False), dtype=np.uint64)


def held_out(key: str, fraction: float, seed: int) -> bool:
    """Whether a subject's rows (or, keyed by fingerprint, a subject-less row) are held out:
    a seeded sha256 of the key, as a fraction, below the holdout fraction."""
    digest = hashlib.sha256(f"holdout\x00{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < fraction * HOLDOUT_RESOLUTION


def _row_key(fingerprint: np.uint64) -> str:
    return f"row\x00{int(fingerprint):016x}"


@dataclass(frozen=True)
class ShardedSplit:
    """A holdout split by subject, and the training rows' subjects and shards."""

    split: Split
    train_subjects: pd.Series
    train_shards: np.ndarray[Any, np.dtype[np.int64]]
    shards: int


def subject_split(frame: pd.DataFrame, schema: FeatureSchema, subject: str,
                  fraction: float, seed: int, shards: int) -> ShardedSplit:
    """Holdout and shard assignment from the subject column (see the module's doc)."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"holdout fraction {fraction} is not between 0 and 1")
    if subject not in frame.columns:
        raise DatasetError(f"sharded training needs the subject column {subject!r}")
    subjects = frame[subject]
    present = subjects.notna().to_numpy()
    named = subjects[present].astype(str)
    fingerprints = row_fingerprints(frame)
    unique = named.unique()
    held = dict(zip(unique, (held_out(value, fraction, seed) for value in unique),
                    strict=True))
    holdout = np.zeros(len(frame), dtype=bool)
    holdout[present] = named.map(held).to_numpy(dtype=bool)
    holdout[~present] = [held_out(_row_key(fp), fraction, seed)
                         for fp in fingerprints[~present]]
    shard_by_subject = {value: shard_of(value, shards) for value in unique}
    assigned = (fingerprints % np.uint64(shards)).astype(np.int64)
    assigned[present] = named.map(shard_by_subject).to_numpy(dtype=np.int64)
    labels = frame[schema.label].astype(int)
    features = frame[list(schema.features)]
    if labels[holdout].nunique() < 2 or labels[~holdout].nunique() < 2:
        raise DatasetError("the subject holdout split leaves one side with a single class: "
                           "the dataset has too few subjects or positives")
    split = Split(features[~holdout], labels[~holdout], features[holdout], labels[holdout])
    return ShardedSplit(split, subjects[~holdout], assigned[~holdout], shards)


def subject_digest(subjects: Iterable[str]) -> str:
    """sha256 of the unique subjects, sorted, NUL-separated (hex)."""
    return hashlib.sha256(SUBJECT_SEPARATOR.join(
        value.encode() for value in sorted(set(subjects)))).hexdigest()


def row_digest(features: pd.DataFrame, labels: pd.Series) -> str:
    """sha256 of the rows' value hashes in order, column names included (hex)."""
    digest = hashlib.sha256("\x00".join(map(str, features.columns)).encode())
    digest.update(row_fingerprints(features.assign(**{str(labels.name): labels})).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardRows:
    """One shard's training rows and what identifies them."""

    index: int
    features: pd.DataFrame
    labels: pd.Series
    subjects: int
    subject_digest: str
    row_digest: str


def shard_rows(sharded: ShardedSplit) -> list[ShardRows]:
    """Every shard's training rows; refuses a shard a classifier cannot learn from."""
    split = sharded.split
    result = []
    for index in range(sharded.shards):
        mask = sharded.train_shards == index
        features, labels = split.train_x[mask], split.train_y[mask]
        if labels.nunique() < 2:
            raise DatasetError(f"shard {index} of {sharded.shards} has {len(labels)} training "
                               "rows and not both classes: use fewer shards")
        subjects = sharded.train_subjects[mask].dropna().astype(str)
        result.append(ShardRows(index, features, labels, subjects.nunique(),
                                subject_digest(subjects), row_digest(features, labels)))
    return result
