"""Live model performance from late labels: per model version, over a sliding window of
event time, the figures a binary classifier is judged by (accuracy, precision, recall,
ROC AUC, log loss) and a calibration curve.

The positive class is "1" (the demo's fraud label; also `True`). An event's probability
of it is its score "1"; events without one count for the threshold metrics only.
A metric that the window cannot define (ROC AUC with one class present, precision with no
positive prediction) is None rather than a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from agogosml.monitor.store.base import LabelledPrediction
from agogosml.monitor.view import CalibrationBin, VersionPerformance

POSITIVE = "1"
CALIBRATION_BINS = 10
EPSILON = 1e-15


def is_positive(value: Any) -> bool | None:
    """A label or prediction as the positive class or not; None when it is neither
    (a multi-class name, a fraction): such events are left out of the figures."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value in ("0", "1"):
        return value == "1"
    return None


def positive_probability(scores: Any) -> float | None:
    if not isinstance(scores, dict):
        return None
    value = scores.get(POSITIVE)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    return None


def calibration(probabilities: np.ndarray[Any, Any],
                truths: np.ndarray[Any, Any]) -> list[CalibrationBin]:
    """Mean predicted probability against the observed positive share, in equal-width bins
    of [0, 1]; empty bins are left out."""
    bins = np.minimum((probabilities * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    out: list[CalibrationBin] = []
    for index in range(CALIBRATION_BINS):
        members = bins == index
        count = int(members.sum())
        if count:
            out.append(CalibrationBin(predicted=float(probabilities[members].mean()),
                                      observed=float(truths[members].mean()), n=count))
    return out


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def version_performance(model_name: str, model_version: str, window_s: float,
                        rows: Sequence[LabelledPrediction]) -> VersionPerformance:
    truths: list[bool] = []
    predicted: list[bool] = []
    probabilities: list[float] = []
    probability_truths: list[bool] = []
    for row in rows:
        truth = is_positive(row.label)
        guess = is_positive(row.event.prediction)
        if truth is None or guess is None:
            continue
        truths.append(truth)
        predicted.append(guess)
        probability = positive_probability(row.event.scores)
        if probability is not None:
            probabilities.append(probability)
            probability_truths.append(truth)
    y = np.asarray(truths, dtype=bool)
    guesses = np.asarray(predicted, dtype=bool)
    true_positives = int((y & guesses).sum())
    p = np.asarray(probabilities, dtype=float)
    py = np.asarray(probability_truths, dtype=float)
    both_classes = 0 < py.sum() < py.size
    return VersionPerformance(
        model_name=model_name, model_version=model_version, window_s=window_s,
        labelled=len(truths),
        accuracy=float((y == guesses).mean()) if truths else None,
        precision=_ratio(true_positives, int(guesses.sum())),
        recall=_ratio(true_positives, int(y.sum())),
        roc_auc=float(roc_auc_score(py, p)) if both_classes else None,
        log_loss=(float(log_loss(py, np.clip(p, EPSILON, 1 - EPSILON), labels=[0.0, 1.0]))
                  if p.size else None),
        calibration=calibration(p, py) if p.size else [],
    )
