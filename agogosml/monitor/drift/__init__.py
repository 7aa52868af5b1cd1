"""Drift of live inputs and predictions against a training run's reference profile
(issue 10, item 4): window tests (`batch`: PSI, KS on the decile grid, chi-square,
Jensen-Shannon), an online detector with a configured ARL0 (`online`: CUSUMs on reference
normal scores, Bernoulli CUSUMs on category shares, thresholds computed from each chart's
in-control Markov chain in `calibration`) and Prometheus samples with bounded cardinality
(`metrics`). numpy/scipy: the monitor's side only, never the reader/writer."""

from agogosml.monitor.drift.batch import (
    CategoricalDrift,
    NumericDrift,
    PredictionDrift,
    WindowReport,
    categorical_drift,
    js_distance,
    numeric_drift,
    prediction_drift,
    psi,
    window_drift,
)
from agogosml.monitor.drift.metrics import Sample, drift_samples
from agogosml.monitor.drift.online import (
    Alarm,
    DetectorConfig,
    DriftDetector,
    Statistic,
    cusum_threshold,
    siegmund_arl,
)

__all__ = ["Alarm", "CategoricalDrift", "DetectorConfig", "DriftDetector", "NumericDrift",
           "PredictionDrift", "Sample", "Statistic", "WindowReport", "categorical_drift",
           "cusum_threshold", "drift_samples", "js_distance", "numeric_drift",
           "prediction_drift", "psi", "siegmund_arl", "window_drift"]
