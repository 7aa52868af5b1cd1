"""Drift results as Prometheus samples with bounded cardinality.

Two labels only: `feature` (a reference profile's feature name, "prediction" or
"prediction_class") and `test`. Category names, unseen values and event ids never become
label values; a feature's categories are summarized by its worst statistic. At most
`max_features` feature names appear (sorted); any others are folded into `OTHER_FEATURES`
with the worst value among them, so a profile with thousands of columns still yields
(max_features + 1) x |tests| series per metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agogosml.monitor.drift.batch import WindowReport
from agogosml.monitor.drift.online import DriftDetector

SCORE = "agogosml_drift_score"
"""Window distance: test = psi | ks_statistic | js_distance | unseen_share."""
PVALUE = "agogosml_drift_pvalue"
"""Window test p-value: test = ks | chi2 (lower is more drift)."""
DETECTOR_LEVEL = "agogosml_drift_detector_level"
"""Online statistic over its threshold, worst chart of the feature: test = cusum | share."""
DETECTOR_ALARMS = "agogosml_drift_detector_alarms"
"""Alarms raised since the detector started (a counter's value): test = cusum | share."""
OTHER_FEATURES = "_other_features"
MAX_FEATURES = 50
MAX_LABEL_LENGTH = 64


@dataclass(frozen=True)
class Sample:
    metric: str
    labels: tuple[tuple[str, str], ...]
    """(("feature", …), ("test", …)) — hashable and in a fixed order."""
    value: float


Raw = tuple[str, str, str, float]
"""(metric, feature, test, value) before the cap."""


def _window(report: WindowReport) -> Iterable[Raw]:
    for name, num in report.numeric.items():
        yield SCORE, name, "psi", num.psi
        yield SCORE, name, "ks_statistic", num.ks_statistic
        yield PVALUE, name, "ks", num.ks_pvalue
        yield PVALUE, name, "chi2", num.chi2_pvalue
    categorical = list(report.categorical.values())
    if report.prediction is not None:
        probability = report.prediction.probability
        yield SCORE, "prediction", "psi", probability.psi
        yield SCORE, "prediction", "ks_statistic", probability.ks_statistic
        yield PVALUE, "prediction", "ks", probability.ks_pvalue
        yield PVALUE, "prediction", "chi2", probability.chi2_pvalue
        categorical.append(report.prediction.classes)
    for cat in categorical:
        yield SCORE, cat.feature, "psi", cat.psi
        yield SCORE, cat.feature, "js_distance", cat.js_distance
        yield SCORE, cat.feature, "unseen_share", cat.unseen_share
        yield PVALUE, cat.feature, "chi2", cat.chi2_pvalue


def _detector(detector: DriftDetector) -> Iterable[Raw]:
    for (feature, test), level in detector.levels().items():
        yield DETECTOR_LEVEL, feature, test, level
    for (feature, test), count in detector.alarm_totals().items():
        yield DETECTOR_ALARMS, feature, test, float(count)


def drift_samples(report: WindowReport | None = None, detector: DriftDetector | None = None,
                  max_features: int = MAX_FEATURES) -> list[Sample]:
    """The samples of a window report and/or an online detector, cardinality capped."""
    raw = [*(_window(report) if report else ()), *(_detector(detector) if detector else ())]
    kept = set(sorted({feature for _, feature, _, _ in raw})[:max_features])
    folded: dict[tuple[str, str, str], float] = {}
    for metric, feature, test, value in raw:
        label = feature[:MAX_LABEL_LENGTH] if feature in kept else OTHER_FEATURES
        key = (metric, label, test)
        if key not in folded:
            folded[key] = value
        elif metric == PVALUE:
            folded[key] = min(folded[key], value)
        elif metric == DETECTOR_ALARMS:
            folded[key] += value
        else:
            folded[key] = max(folded[key], value)
    return [Sample(metric, (("feature", feature), ("test", test)), value)
            for (metric, feature, test), value in sorted(folded.items())]
