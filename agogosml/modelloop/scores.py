"""Holdout metrics for a binary classifier's predict_proba output."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score

METRICS = ("roc_auc", "average_precision", "accuracy", "log_loss")


def holdout_metrics(labels: pd.Series, probabilities: np.ndarray[Any, Any]) -> dict[str, float]:
    positive = probabilities[:, 1]
    return {
        "roc_auc": float(roc_auc_score(labels, positive)),
        "average_precision": float(average_precision_score(labels, positive)),
        "accuracy": float(accuracy_score(labels, probabilities.argmax(axis=1))),
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
    }
