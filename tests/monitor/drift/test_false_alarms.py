"""Statistical checks of the detector on long demo streams (slow: in SLOW_FILES)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from agogosml.demo.data import transactions
from agogosml.monitor.drift import DetectorConfig, DriftDetector
from bench.drift import Model, shift_amount

EVENTS = 200_000


def test_false_alarms_come_at_the_configured_rate(model: Model) -> None:
    """ARL0 10,000 over 200,000 in-control events: 20 alarms expected from the calibration
    (the live stream is another sample than the reference, so not exactly its null); a
    fixed seed, and bounds about 2 standard deviations either side (the union bound it replaced
    gave 9: needlessly deaf)."""
    features, probabilities = model.stream(transactions(EVENTS, seed=61))
    detector = DriftDetector(model.profile, DetectorConfig(arl0=10_000))
    alarms = []
    for start in range(0, EVENTS, 5_000):
        alarms += detector.update(features.iloc[start:start + 5_000],
                                  probabilities[start:start + 5_000])
    assert 10 <= len(alarms) <= 32, [a.statistic for a in alarms]
    quiet = DriftDetector(model.profile, DetectorConfig(arl0=10_000_000))
    assert quiet.update(features.iloc[:50_000], probabilities[:50_000]) == []


def test_a_half_sigma_shift_is_mostly_found_within_100_events(model: Model) -> None:
    """500 in-control events, then log(amount) shifted by 0.5 sigma; the issue's target is
    0.95 within 100 events, out of reach at ARL0 10,000 (see the module doc); the union
    bound thresholds this replaced found 0.685."""
    streams, warmup = 100, 500
    frame = transactions(streams * (warmup + 100), seed=1_000)
    position = np.arange(len(frame)) % (warmup + 100)
    live = pd.concat([frame[position < warmup], shift_amount(frame[position >= warmup], 0.5)])
    order = np.argsort(np.concatenate([np.flatnonzero(position < warmup),
                                       np.flatnonzero(position >= warmup)]), kind="stable")
    features, probabilities = model.stream(live.iloc[order])
    found = 0
    for stream in range(streams):
        rows = slice(stream * (warmup + 100), (stream + 1) * (warmup + 100))
        alarms = DriftDetector(model.profile).update(features.iloc[rows], probabilities[rows])
        found += any(a.statistic.feature == "amount" and a.index >= warmup for a in alarms)
    assert found >= 80
