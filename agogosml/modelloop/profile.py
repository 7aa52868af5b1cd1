"""The reference profile of a model's training data: what drift detection compares live
windows with. It is logged with every training run as `reference_profile.json`.

- Numeric features: decile bin edges and the share of training rows per bin, plus mean,
  sample standard deviation, min, max and the share of missing values. Bins are
  right-closed and the outer ones are open-ended — (-inf, e1], (e1, e2], …, (e[k-1], +inf)
  — so a live value outside the training range still lands in the first or last bin.
  Repeated quantiles (an integer feature with few values) collapse into one edge.
- Categorical features, booleans included: the share of each value, keyed by `str(value)`
  ("True"/"False" for booleans).
- Predictions: a histogram of the positive-class probability over ten equal bins of
  [0, 1] (numpy.histogram's bins), the share of each predicted class (argmax), and the
  share of each label.

`bin_shares` and `value_shares` bin a live window exactly as the reference was binned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError

PROFILE_VERSION = 1
DECILES = np.linspace(0.0, 1.0, 11)
PROBABILITY_EDGES = tuple(float(edge) for edge in np.round(np.linspace(0.0, 1.0, 11), 1))


def _shares(counts: Any, total: int) -> tuple[float, ...]:
    return tuple(float(count) / total if total else 0.0 for count in counts)


@dataclass(frozen=True)
class NumericProfile:
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float
    missing_share: float

    @classmethod
    def of(cls, values: pd.Series) -> NumericProfile:
        present = values.dropna().astype(float).to_numpy()
        if present.size == 0:
            return cls((0.0, 0.0), (0.0,), 0.0, 0.0, 0.0, 0.0, 1.0)
        edges = tuple(float(edge) for edge in np.unique(np.quantile(present, DECILES)))
        if len(edges) == 1:
            edges = edges * 2
        return cls(edges, _bin_shares(edges, present), float(present.mean()),
                   float(present.std(ddof=1)) if present.size > 1 else 0.0,
                   float(present.min()), float(present.max()), 1.0 - present.size / len(values))

    def bin_shares(self, values: pd.Series) -> tuple[float, ...]:
        """Shares of a window's (non-missing) values in this profile's bins."""
        return _bin_shares(self.edges, values.dropna().astype(float).to_numpy())


def _bin_shares(edges: tuple[float, ...], present: np.ndarray[Any, Any]) -> tuple[float, ...]:
    bins = np.searchsorted(np.asarray(edges[1:-1]), present, side="left")
    return _shares(np.bincount(bins, minlength=len(edges) - 1), present.size)


@dataclass(frozen=True)
class CategoricalProfile:
    shares: dict[str, float]

    @classmethod
    def of(cls, values: pd.Series) -> CategoricalProfile:
        return cls(value_shares(values))


def value_shares(values: pd.Series) -> dict[str, float]:
    """Share of each value (missing ones under "None"), most frequent first. Values are
    counted first and named after (`str`), so a large column is not turned into strings
    one by one; values with the same name (1 and "1") count together."""
    counts: dict[str, int] = {}
    value: Any
    for value, count in values.value_counts(dropna=False).items():
        name = "None" if value is None or bool(pd.isna(value)) else str(value)
        counts[name] = counts.get(name, 0) + int(count)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return {name: count / total for name, count in ranked}


@dataclass(frozen=True)
class PredictionProfile:
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    class_shares: dict[str, float]
    label_shares: dict[str, float]

    @classmethod
    def of(cls, probabilities: np.ndarray[Any, Any], labels: pd.Series) -> PredictionProfile:
        positive = probabilities[:, 1]
        counts, _ = np.histogram(positive, bins=PROBABILITY_EDGES)
        predicted = pd.Series(probabilities.argmax(axis=1))
        return cls(PROBABILITY_EDGES, _shares(counts, positive.size),
                   dict(sorted(value_shares(predicted).items())),
                   dict(sorted(value_shares(labels).items())))


@dataclass(frozen=True)
class ReferenceProfile:
    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: PredictionProfile
    version: int = PROFILE_VERSION

    @classmethod
    def build(cls, features: pd.DataFrame, labels: pd.Series, schema: FeatureSchema,
              probabilities: np.ndarray[Any, Any]) -> ReferenceProfile:
        return cls(
            rows=len(features),
            numeric={name: NumericProfile.of(features[name]) for name in schema.numeric},
            categorical={name: CategoricalProfile.of(features[name])
                         for name in (*schema.categorical, *schema.boolean)},
            prediction=PredictionProfile.of(probabilities, labels),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        data = json.loads(text)
        if data.get("version") != PROFILE_VERSION:
            raise ModelLoopError(f"reference profile version {data.get('version')} is not "
                             f"{PROFILE_VERSION}")
        prediction = data["prediction"]
        return cls(
            rows=int(data["rows"]),
            numeric={name: NumericProfile(tuple(p["edges"]), tuple(p["shares"]), p["mean"],
                                          p["std"], p["min"], p["max"], p["missing_share"])
                     for name, p in data["numeric"].items()},
            categorical={name: CategoricalProfile(dict(p["shares"]))
                         for name, p in data["categorical"].items()},
            prediction=PredictionProfile(tuple(prediction["edges"]),
                                         tuple(prediction["shares"]),
                                         dict(prediction["class_shares"]),
                                         dict(prediction["label_shares"])),
        )
