"""Statistical checks of the detector on long in-control streams (slow: in SLOW_FILES)."""

from __future__ import annotations

import numpy as np

from agogosml.demo.data import transactions
from agogosml.monitor.drift import DetectorConfig, DriftDetector
from bench.drift import Model, shift_amount

EVENTS = 200_000


def test_no_false_alarms_beyond_the_configured_run_length(model: Model) -> None:
    """ARL0 10,000 over 200,000 in-control events expects at most 20 alarms; a fixed seed and
    a bound of 30 (the detector's union bound makes the real run length longer)."""
    features, probabilities = model.stream(transactions(EVENTS, seed=61))
    detector = DriftDetector(model.profile, DetectorConfig(arl0=10_000))
    alarms = []
    for start in range(0, EVENTS, 5_000):
        alarms += detector.update(features.iloc[start:start + 5_000],
                                  probabilities[start:start + 5_000])
    assert len(alarms) <= 30, [a.statistic for a in alarms]
    quiet = DriftDetector(model.profile, DetectorConfig(arl0=10_000_000))
    assert quiet.update(features.iloc[:50_000], probabilities[:50_000]) == []


def test_a_half_sigma_shift_is_found_by_the_detector_of_its_feature(model: Model) -> None:
    delays = []
    for seed in range(30):
        frame = shift_amount(transactions(600, seed=1_000 + seed), 0.5)
        features, probabilities = model.stream(frame)
        alarms = DriftDetector(model.profile).update(features, probabilities)
        hits = [a.index for a in alarms if a.statistic.feature == "amount"]
        delays.append(min(hits) + 1 if hits else np.inf)
    assert np.median(delays) < 150
    assert sum(d <= 600 for d in delays) >= 29
