"""Live model performance from late labels: per model version, over a sliding window of
event time (and, for history, per window of a past range), the figures a binary
classifier is judged by (accuracy, precision, recall, ROC AUC, log loss) and a
calibration curve.

The positive class is configured (`positive`, default "1": the demo's fraud label). A
label or prediction is compared with it by its class key: booleans as "1"/"0", integers
(and whole floats) as their digits, strings as they are; anything else (null, a
fraction, a list) is left out of the figures. An event's probability of the positive
class is its score under that key. A metric the window cannot define (ROC AUC with one
class present, precision with no positive prediction) is None, not a made-up number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from agogosml.monitor.store.base import AsyncEventStore, LabelledPrediction
from agogosml.monitor.view import (
    CalibrationBin,
    PerformanceHistory,
    PerformancePoint,
    VersionPerformance,
)

POSITIVE = "1"
MAX_HISTORY_ROWS = 200_000
"""Labelled predictions per version a history reads at most (the latest of the range)."""
CALIBRATION_BINS = 10
EPSILON = 1e-15


def class_key(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value:
        return value
    return None


def is_positive(value: Any, positive: str = POSITIVE) -> bool | None:
    """Whether a label or prediction is the positive class; None when it is no class."""
    key = class_key(value)
    return None if key is None else key == positive


def positive_probability(scores: Any, positive: str = POSITIVE) -> float | None:
    if not isinstance(scores, dict):
        return None
    value = scores.get(positive)
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


class _Figures:
    """The comparable rows of a window, and the figures over them."""

    def __init__(self, rows: Sequence[LabelledPrediction], positive: str) -> None:
        truths: list[bool] = []
        guesses: list[bool] = []
        probabilities: list[float] = []
        probability_truths: list[bool] = []
        for row in rows:
            truth = is_positive(row.label, positive)
            guess = is_positive(row.event.prediction, positive)
            if truth is None or guess is None:
                continue
            truths.append(truth)
            guesses.append(guess)
            probability = positive_probability(row.event.scores, positive)
            if probability is not None:
                probabilities.append(probability)
                probability_truths.append(truth)
        self.y = np.asarray(truths, dtype=bool)
        self.guesses = np.asarray(guesses, dtype=bool)
        self.p = np.asarray(probabilities, dtype=float)
        self.py = np.asarray(probability_truths, dtype=float)

    @property
    def labelled(self) -> int:
        return int(self.y.size)

    def scalars(self) -> dict[str, float | None]:
        true_positives = int((self.y & self.guesses).sum())
        both_classes = 0 < self.py.sum() < self.py.size
        return {
            "accuracy": float((self.y == self.guesses).mean()) if self.y.size else None,
            "precision": _ratio(true_positives, int(self.guesses.sum())),
            "recall": _ratio(true_positives, int(self.y.sum())),
            "roc_auc": float(roc_auc_score(self.py, self.p)) if both_classes else None,
            "log_loss": (float(log_loss(self.py, np.clip(self.p, EPSILON, 1 - EPSILON),
                                        labels=[0.0, 1.0])) if self.p.size else None),
        }


def version_performance(model_name: str, model_version: str, window_s: float,
                        rows: Sequence[LabelledPrediction],
                        positive: str = POSITIVE) -> VersionPerformance:
    figures = _Figures(rows, positive)
    scalars = figures.scalars()
    return VersionPerformance(
        model_name=model_name, model_version=model_version, window_s=window_s,
        labelled=figures.labelled, accuracy=scalars["accuracy"],
        precision=scalars["precision"], recall=scalars["recall"],
        roc_auc=scalars["roc_auc"], log_loss=scalars["log_loss"],
        calibration=calibration(figures.p, figures.py) if figures.p.size else [])


def performance_history(model_version: str, rows: Sequence[LabelledPrediction],
                        start_ms: int, window_ms: int,
                        positive: str = POSITIVE) -> list[PerformancePoint]:
    """The version's figures per window of event time from `start_ms`, for the windows
    that hold labelled predictions, in time order."""
    by_window: defaultdict[int, list[LabelledPrediction]] = defaultdict(list)
    for row in rows:
        index = (row.event.event_time_ms - start_ms) // window_ms
        by_window[start_ms + index * window_ms].append(row)
    points = []
    for window_start, members in sorted(by_window.items()):
        figures = _Figures(members, positive)
        if figures.labelled:
            scalars = figures.scalars()
            points.append(PerformancePoint(
                window_start_ms=window_start, model_version=model_version,
                labelled=figures.labelled, accuracy=scalars["accuracy"],
                precision=scalars["precision"], recall=scalars["recall"],
                roc_auc=scalars["roc_auc"], log_loss=scalars["log_loss"]))
    return points


async def history_from_store(store: AsyncEventStore, start_ms: int, end_ms: int,
                             window_ms: int, positive: str = POSITIVE) -> PerformanceHistory:
    """Per model version seen in [start, end), its figures per window. ValueError when
    the store cannot cut the range into such windows (see `EventStore.counts`)."""
    versions = sorted({row.model_version
                       for row in await store.counts(start_ms, end_ms, window_ms)})
    points: list[PerformancePoint] = []
    truncated = False
    for version in versions:
        rows = await store.labelled(version, start_ms, end_ms, limit=MAX_HISTORY_ROWS)
        truncated |= len(rows) == MAX_HISTORY_ROWS
        points += performance_history(version, rows, start_ms, window_ms, positive)
    return PerformanceHistory(points=points, truncated=truncated)
