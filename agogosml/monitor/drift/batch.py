"""Window (batch) drift tests of live values against a training run's reference profile.

What the profile allows: numeric features are known only through their decile bins
(right-closed, open-ended outer bins), categories through their shares, predictions
through a ten-bin histogram of the positive-class probability (left-closed bins) and the
shares of predicted classes. Every test here therefore works on those bins:

- **PSI** over the reference bins, each share floored at `EPSILON` so an empty bin costs a
  bounded amount instead of infinity.
- **KS on the decile grid**: D = max over the inner bin edges of |live ECDF - reference
  CDF|. The reference CDF is known exactly at the edges (the cumulated bin shares), so
  no interpolation is assumed. D on the grid is at most the full KS statistic, so its
  p-value from the KS distribution is conservative (valid, a little less powerful), and
  the test stays valid for integer features whose repeated deciles collapsed — where a KS
  against the piecewise-linear CDF the deciles define would reject on ties alone.
  With the reference's row count it is the two-sample test (n·m/(n+m) effective size).
- **Chi-square** of homogeneity on the bins (or categories): reference counts (shares x
  reference rows) against live counts, a 2xk contingency table, so the reference's own
  sampling noise is accounted for. Without a row count it is the goodness-of-fit test
  against the shares.
- **Jensen-Shannon distance** (base 2, in [0, 1]) for categories and the prediction
  classes.

Categories the reference never saw are pooled into one `OTHER` bin, whose share and
(first `max_unseen`) names are reported; the category names themselves never become
metric labels (see `metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from agogosml.modelloop.profile import (
    CategoricalProfile,
    NumericProfile,
    PredictionProfile,
    ReferenceProfile,
)

EPSILON = 1e-4
"""Floor of a bin's share in PSI (an empty bin then costs about its share x ln(share/ε))."""
OTHER = "__other__"
"""The bin of categories the reference never saw."""
MAX_UNSEEN = 10
"""How many unseen category names a result lists (their count is always exact)."""

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class NumericDrift:
    """A numeric window against reference bins (a feature, or the prediction's probability)."""

    feature: str
    n: int
    psi: float
    ks_statistic: float
    ks_pvalue: float
    chi2: float
    chi2_pvalue: float
    missing_share: float = 0.0


@dataclass(frozen=True)
class CategoricalDrift:
    feature: str
    n: int
    psi: float
    chi2: float
    chi2_pvalue: float
    js_distance: float
    unseen_share: float
    unseen: tuple[str, ...] = ()
    """Up to MAX_UNSEEN unseen category names, most frequent first."""


@dataclass(frozen=True)
class PredictionDrift:
    probability: NumericDrift
    classes: CategoricalDrift


@dataclass(frozen=True)
class WindowReport:
    n: int
    numeric: dict[str, NumericDrift] = field(default_factory=dict)
    categorical: dict[str, CategoricalDrift] = field(default_factory=dict)
    prediction: PredictionDrift | None = None


def psi(expected: Sequence[float] | Array, actual: Sequence[float] | Array,
        epsilon: float = EPSILON) -> float:
    """Population stability index Σ (a - e)·ln(a / e) over the same bins; 0 when equal."""
    e = np.maximum(np.asarray(expected, dtype=float), epsilon)
    a = np.maximum(np.asarray(actual, dtype=float), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(p: Sequence[float] | Array, q: Sequence[float] | Array) -> float:
    """Jensen-Shannon distance in base 2: 0 for identical distributions, 1 for disjoint."""
    p_arr = np.asarray(p, dtype=float)
    q_arr = np.asarray(q, dtype=float)
    p_arr = p_arr / p_arr.sum() if p_arr.sum() > 0 else p_arr
    q_arr = q_arr / q_arr.sum() if q_arr.sum() > 0 else q_arr
    m = (p_arr + q_arr) / 2

    def kl(x: Array) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return float(np.sqrt(max(0.0, (kl(p_arr) + kl(q_arr)) / 2)))


def chi_square(reference_shares: Sequence[float] | Array, counts: Sequence[float] | Array,
               reference_rows: int | None) -> tuple[float, float]:
    """(statistic, p-value): homogeneity of live counts with the reference (2xk table of
    reference counts and live counts) or, without reference rows, goodness of fit with the
    shares. Bins empty on both sides are dropped; fewer than two bins left → (0, 1)."""
    shares = np.asarray(reference_shares, dtype=float)
    live = np.asarray(counts, dtype=float)
    n = live.sum()
    if n == 0:
        return 0.0, 1.0
    if reference_rows:
        ref = shares * reference_rows
        keep = (ref + live) > 0
        table = np.vstack([ref[keep], live[keep]])
        if table.shape[1] < 2:
            return 0.0, 1.0
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        dof = table.shape[1] - 1
    else:
        expected = np.maximum(shares, EPSILON) * n
        keep = (shares > 0) | (live > 0)
        if keep.sum() < 2:
            return 0.0, 1.0
        statistic = float(np.sum((live[keep] - expected[keep]) ** 2 / expected[keep]))
        dof = int(keep.sum()) - 1
    return statistic, float(stats.chi2.sf(statistic, dof))


def ks_on_grid(reference_shares: Sequence[float] | Array, counts: Sequence[float] | Array,
               reference_rows: int | None) -> tuple[float, float]:
    """(D, p-value): the largest gap between cumulated shares at the inner bin edges."""
    live = np.asarray(counts, dtype=float)
    n = live.sum()
    if n == 0:
        return 0.0, 1.0
    reference_cdf = np.cumsum(np.asarray(reference_shares, dtype=float))[:-1]
    live_cdf = np.cumsum(live / n)[:-1]
    d = float(np.max(np.abs(live_cdf - reference_cdf))) if reference_cdf.size else 0.0
    effective = n * reference_rows / (n + reference_rows) if reference_rows else n
    if effective < 1:
        return d, 1.0
    # kstwo needs an integer size; the floor keeps the p-value on the conservative side.
    return d, float(stats.kstwo.sf(d, int(effective)))


def numeric_counts(profile: NumericProfile, values: Array) -> Array:
    """Live counts in the profile's bins, binned exactly as `NumericProfile.bin_shares`."""
    edges = np.asarray(profile.edges, dtype=float)
    bins = np.searchsorted(edges[1:-1], values, side="left")
    return np.bincount(bins, minlength=len(profile.shares)).astype(float)


def _present(values: Any) -> tuple[Array, float]:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    present = array[~np.isnan(array)]
    return present, (1.0 - present.size / array.size) if array.size else 0.0


def numeric_drift(profile: NumericProfile, values: Any, feature: str = "",
                  reference_rows: int | None = None) -> NumericDrift:
    """PSI, KS on the decile grid and chi-square on the decile bins of one window."""
    present, missing = _present(values)
    counts = numeric_counts(profile, present)
    n = int(counts.sum())
    rows = round(reference_rows * (1 - profile.missing_share)) if reference_rows else None
    shares = counts / n if n else counts
    d, ks_p = ks_on_grid(profile.shares, counts, rows)
    chi2, chi2_p = chi_square(profile.shares, counts, rows)
    return NumericDrift(feature, n, psi(profile.shares, shares) if n else 0.0, d, ks_p,
                        chi2, chi2_p, missing)


def category_keys(values: Any) -> pd.Series:
    """Live values as the profile keys them: str(value), missing ones as "None"."""
    series = pd.Series(values, dtype=object)
    return series.astype(str).mask(series.isna(), "None")


def categorical_drift(profile: CategoricalProfile, values: Any, feature: str = "",
                      reference_rows: int | None = None,
                      max_unseen: int = MAX_UNSEEN) -> CategoricalDrift:
    """Chi-square, Jensen-Shannon and PSI over the reference categories plus OTHER."""
    counts = category_keys(values).value_counts()
    n = int(counts.sum())
    known = list(profile.shares)
    unseen_counts = counts[~counts.index.isin(known)]
    live = np.array([float(counts.get(key, 0)) for key in known]
                    + [float(unseen_counts.sum())])
    reference = np.array([profile.shares[key] for key in known] + [0.0])
    if n == 0:
        return CategoricalDrift(feature, 0, 0.0, 0.0, 1.0, 0.0, 0.0)
    chi2, chi2_p = chi_square(reference, live, reference_rows)
    return CategoricalDrift(
        feature, n, psi(reference, live / n), chi2, chi2_p, js_distance(reference, live / n),
        float(unseen_counts.sum()) / n,
        tuple(str(name) for name in unseen_counts.index[:max_unseen]))


def prediction_drift(profile: PredictionProfile, probabilities: Array,
                     reference_rows: int | None = None) -> PredictionDrift:
    """The positive-class probability on the reference histogram, and the predicted classes."""
    array = np.asarray(probabilities, dtype=float)
    positive = array[:, 1] if array.ndim == 2 else array
    counts, _ = np.histogram(positive, bins=np.asarray(profile.edges, dtype=float))
    n = int(counts.sum())
    shares = counts / n if n else counts.astype(float)
    d, ks_p = ks_on_grid(profile.shares, counts, reference_rows)
    chi2, chi2_p = chi_square(profile.shares, counts, reference_rows)
    probability = NumericDrift("prediction", n, psi(profile.shares, shares) if n else 0.0,
                               d, ks_p, chi2, chi2_p)
    predicted = array.argmax(axis=1) if array.ndim == 2 else (array >= 0.5).astype(int)
    classes = categorical_drift(CategoricalProfile(profile.class_shares), predicted,
                                "prediction_class", reference_rows)
    return PredictionDrift(probability, classes)


def window_drift(reference: ReferenceProfile, features: pd.DataFrame,
                 probabilities: Array | None = None) -> WindowReport:
    """Every test of one window: the features the frame has, and the predictions if given."""
    rows = reference.rows or None
    numeric = {name: numeric_drift(profile, features[name], name, rows)
               for name, profile in reference.numeric.items() if name in features}
    categorical = {name: categorical_drift(profile, features[name], name, rows)
                   for name, profile in reference.categorical.items() if name in features}
    prediction = (prediction_drift(reference.prediction, probabilities, rows)
                  if probabilities is not None else None)
    return WindowReport(len(features), numeric, categorical, prediction)
