"""Dataset files for training: CSV or JSON-lines in, a typed feature schema and a
deterministic holdout split out.

The label is binary (0/1 or bool): the served model answers predict_proba with two
columns, the second one the positive class ("fraud") probability.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from agogosml.demo.data import FEATURES, LABEL, PERSONAL_FIELDS, transactions
from agogosml.modelloop.errors import DatasetError

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


DEMO_SUBJECT = "customer_id"
"""The demo's data-subject column (one of its personal fields)."""


@dataclass(frozen=True)
class DatasetSpec:
    """Which columns are the label and the features. A feature's kind follows its dtype
    (bool → boolean, numbers → numeric, anything else → categorical) unless it is listed
    in `categorical` (integer codes, say). Personal fields may never be features.

    `subject` is the column holding each row's data subject (a pseudonym, as the input
    reader writes it), or None: what lineage records and sharded training splits by. It is
    personal, so never a feature; training needs it only for lineage or shards."""

    label: str = LABEL
    features: tuple[str, ...] = FEATURES
    categorical: tuple[str, ...] = ()
    personal_fields: tuple[str, ...] = PERSONAL_FIELDS
    subject: str | None = DEMO_SUBJECT


@dataclass(frozen=True)
class FeatureSchema:
    label: str
    features: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        return cls(label=str(data["label"]),
                   **{key: tuple(data[key])
                      for key in ("features", "numeric", "categorical", "boolean")})


@dataclass(frozen=True)
class Split:
    train_x: pd.DataFrame
    train_y: pd.Series
    holdout_x: pd.DataFrame
    holdout_y: pd.Series

    def holdout_frame(self, label: str) -> pd.DataFrame:
        """The holdout rows as stored with a run: features and label, nothing else."""
        return self.holdout_x.assign(**{label: self.holdout_y})


def load_dataset(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        frame = pd.read_csv(path)
    elif suffix in JSONL_SUFFIXES:
        # precise_float: the default fast parser turns 0.3 into 0.30000000000000004.
        frame = pd.read_json(path, lines=True, dtype=False, precise_float=True)
    else:
        raise DatasetError(f"dataset {path}: use .csv or JSON lines (.jsonl, .ndjson, .json)")
    if frame.empty:
        raise DatasetError(f"dataset {path} has no rows")
    return frame


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes (32 hex digits: MLflow stores at most 36)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def write_demo_dataset(path: Path, rows: int = 20_000, seed: int = 7) -> Path:
    """The demo's synthetic transactions (personal fields included, as real data would
    have them) as CSV or JSON lines, chosen by the file's suffix."""
    frame = transactions(rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        frame.to_csv(path, index=False)
    elif suffix in JSONL_SUFFIXES:
        frame.to_json(path, orient="records", lines=True)
    else:
        raise DatasetError(f"dataset {path}: use .csv or JSON lines (.jsonl, .ndjson, .json)")
    return path


def resolve_schema(frame: pd.DataFrame, spec: DatasetSpec) -> FeatureSchema:
    personal = sorted(set(spec.features) & set(spec.personal_fields))
    if personal:
        raise DatasetError(f"personal fields cannot be features: {', '.join(personal)}")
    if spec.label in spec.features:
        raise DatasetError(f"the label {spec.label} cannot be a feature")
    if spec.subject is not None and spec.subject in (*spec.features, spec.label):
        raise DatasetError(f"the subject column {spec.subject} cannot be a feature or the "
                           "label")
    missing = [name for name in (*spec.features, spec.label) if name not in frame.columns]
    if missing:
        raise DatasetError(f"dataset lacks columns: {', '.join(missing)}")
    unknown = sorted(set(spec.categorical) - set(spec.features))
    if unknown:
        raise DatasetError(f"categorical columns that are not features: {', '.join(unknown)}")
    labels = set(frame[spec.label].dropna().astype(int).unique().tolist()) \
        if pd.api.types.is_numeric_dtype(frame[spec.label]) else set()
    if labels != {0, 1} or frame[spec.label].isna().any():
        raise DatasetError(f"label {spec.label} must hold both 0 and 1 and nothing else")
    kinds: dict[str, list[str]] = {"numeric": [], "categorical": [], "boolean": []}
    for name in spec.features:
        dtype = frame[name].dtype
        if name in spec.categorical:
            kinds["categorical"].append(name)
        elif pd.api.types.is_bool_dtype(dtype):
            kinds["boolean"].append(name)
        elif pd.api.types.is_numeric_dtype(dtype):
            kinds["numeric"].append(name)
        else:
            kinds["categorical"].append(name)
    return FeatureSchema(spec.label, tuple(spec.features), tuple(kinds["numeric"]),
                         tuple(kinds["categorical"]), tuple(kinds["boolean"]))


def split_holdout(frame: pd.DataFrame, schema: FeatureSchema, fraction: float,
                  seed: int) -> Split:
    """A stratified split that depends only on the rows, the fraction and the seed."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"holdout fraction {fraction} is not between 0 and 1")
    labels = frame[schema.label].astype(int)
    try:
        train_x, holdout_x, train_y, holdout_y = train_test_split(
            frame[list(schema.features)], labels, test_size=fraction, random_state=seed,
            stratify=labels)
    except ValueError as error:
        raise DatasetError(f"cannot split the dataset: {error}") from None
    return Split(train_x, train_y, holdout_x, holdout_y)
