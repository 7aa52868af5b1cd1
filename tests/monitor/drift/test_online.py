"""The online detector: thresholds from ARL0, the batch CUSUM recursion, quick detection.
(Siegmund's approximation is no longer how thresholds are set; it stays exported.)"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.demo.data import transactions
from agogosml.modelloop.profile import CategoricalProfile, PredictionProfile, ReferenceProfile
from agogosml.monitor.drift import (
    DetectorConfig,
    DriftDetector,
    Statistic,
    cusum_threshold,
    siegmund_arl,
)
from agogosml.monitor.drift.batch import OTHER
from agogosml.monitor.drift.calibration import cusum_arl
from agogosml.monitor.drift.online import _lindley, bin_scores, normal_scores
from bench.drift import Model, new_category, shift_amount


@settings(database=None, derandomize=True, deadline=None)  # no example cache in the clone
@given(st.floats(0.01, 1.0), st.floats(10.0, 1e7))
def test_the_threshold_gives_the_configured_run_length(k: float, arl: float) -> None:
    h = cusum_threshold(k, arl)
    assert siegmund_arl(k, h) == pytest.approx(arl, rel=1e-6)
    assert cusum_threshold(k, arl * 2) > h


def test_siegmund_matches_the_textbook_values() -> None:
    # Montgomery's table: k = 0.5, h = 5 gives ARL0 ≈ 465 (two-sided) / 930 (one-sided).
    assert siegmund_arl(0.5, 5.0) == pytest.approx(938, rel=0.02)
    assert siegmund_arl(0.5, 5.0, mean=1.0) == pytest.approx(10.4, rel=0.03)


@settings(database=None, derandomize=True, deadline=None)  # no example cache in the clone
@given(st.lists(st.floats(0.001, 1.0), min_size=1, max_size=12))
def test_bin_scores_are_centred_and_unit_variance_under_the_reference(
        raw: list[float]) -> None:
    shares = np.asarray(raw) / sum(raw)
    scores = bin_scores(shares)
    assert np.all(np.isfinite(scores))
    assert float(np.sum(shares * scores)) == pytest.approx(0.0, abs=1e-9)
    if len(raw) > 1:
        assert float(np.sum(shares * scores ** 2)) == pytest.approx(1.0, rel=1e-9)
        assert list(scores) == sorted(scores), "higher bins score higher"


def test_scores_bin_values_as_the_profile_does(profile: ReferenceProfile) -> None:
    amount = profile.numeric["amount"]
    scores = normal_scores(amount, np.array([-1.0, amount.edges[1], amount.edges[1] + 1e-9,
                                             1e12]))
    expected = bin_scores(np.asarray(amount.shares))
    assert list(scores) == [expected[0], expected[0], expected[1], expected[-1]]
    prediction = normal_scores(profile.prediction, np.array([0.0, 0.1, 1.0]))
    expected = bin_scores(np.asarray(profile.prediction.shares))
    assert list(prediction) == [expected[0], expected[1], expected[-1]]


def naive(state: np.ndarray, steps: np.ndarray, thresholds: np.ndarray
          ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    state = state.copy()
    alarms = []
    for t, row in enumerate(steps):
        state = np.maximum(0.0, state + row)
        for column in np.flatnonzero(state > thresholds):
            alarms.append((t, int(column)))
            state[column] = 0.0
    return state, alarms


@settings(database=None, derandomize=True, max_examples=200, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 300), st.integers(1, 5))
def test_the_batch_recursion_equals_the_event_by_event_cusum(seed: int, n: int,
                                                             width: int) -> None:
    rng = np.random.default_rng(seed)
    steps = rng.normal(rng.uniform(-0.5, 0.5), 1.0, (n, width))
    thresholds = rng.uniform(0.5, 8.0, width)
    state = rng.uniform(0, 1, width) * thresholds
    final, alarms = _lindley(state, steps, thresholds)
    expected_final, expected_alarms = naive(state, steps, thresholds)
    assert sorted(alarms) == sorted(expected_alarms)
    np.testing.assert_allclose(final, expected_final, atol=1e-9)


@settings(database=None, derandomize=True, max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=5))
def test_batch_sizes_do_not_change_the_alarms(model: Model, cuts: list[int]) -> None:
    features, probabilities = model.stream(shift_amount(transactions(1_500, seed=9), 1.0))
    whole = DriftDetector(model.profile)
    expected = whole.update(features, probabilities)
    split = DriftDetector(model.profile)
    alarms = []
    start = 0
    for stop in [*sorted(set(cuts)), len(features)]:
        alarms += split.update(features.iloc[start:stop], probabilities[start:stop])
        start = stop
    assert alarms == expected
    assert expected, "a 1 sigma shift of log(amount) alarms within 1,500 events"
    np.testing.assert_allclose(split.state, whole.state)
    assert split.events == whole.events == 1_500


def test_a_large_shift_is_detected_quickly(model: Model) -> None:
    features, probabilities = model.stream(shift_amount(transactions(200, seed=31), 2.0))
    alarms = DriftDetector(model.profile).update(features, probabilities)
    first = min(alarm.index for alarm in alarms if alarm.statistic.feature == "amount")
    assert first < 30
    assert {alarm.statistic.test for alarm in alarms} <= {"cusum", "share"}


def test_a_new_category_is_detected_and_named_as_other(model: Model) -> None:
    frame = new_category(transactions(1_000, seed=32), 0.2, seed=1)
    features, probabilities = model.stream(frame)
    alarms = DriftDetector(model.profile).update(features, probabilities)
    merchant = [a for a in alarms if a.statistic.feature == "merchant_category"]
    assert merchant
    assert merchant[0].statistic.detail == f"up:{OTHER}"
    assert merchant[0].index < 100


def test_the_statistics_share_the_configured_false_alarm_rate(
        profile: ReferenceProfile) -> None:
    """Every statistic restarts after its alarm, so the detector's alarm rate is the sum of
    the statistics' rates: 1/ARL0, split by the configured budget."""
    low = DriftDetector(profile, DetectorConfig(arl0=1_000))
    high = DriftDetector(profile, DetectorConfig(arl0=100_000))
    assert np.all(high.thresholds > low.thresholds)
    for detector in (low, high):
        assert float(np.sum(1 / detector.in_control_arl)) == pytest.approx(
            1 / detector.config.arl0, rel=1e-9)
    kinds = [s.detail.split()[-1] if s.test == "cusum" else "share" for s in low.statistics]
    for kind, share in [("δ=0.4", 0.95), ("δ=0.1", 0.04), ("share", 0.01)]:
        rates = [1 / arl for arl, k in zip(low.in_control_arl, kinds, strict=True) if k == kind]
        assert sum(rates) == pytest.approx(share / 1_000, rel=1e-9)


def test_each_threshold_gives_its_statistic_the_calibrated_run_length(
        profile: ReferenceProfile) -> None:
    detector = DriftDetector(profile)
    up = detector.statistics.index(Statistic("amount", "cusum", "up δ=0.4"))
    shares = np.asarray(profile.numeric["amount"].shares)
    steps = bin_scores(shares) - 0.2
    assert cusum_arl(steps, shares, detector.thresholds[up]) == pytest.approx(
        detector.in_control_arl[up], rel=2e-3)
    other = detector.statistics.index(Statistic("merchant_category", "share", f"up:{OTHER}"))
    p0, p1 = 1 / profile.rows, 1 / profile.rows + 0.05
    bernoulli = np.asarray([math.log(p1 / p0), math.log((1 - p1) / (1 - p0))])
    assert cusum_arl(bernoulli, np.asarray([p0, 1 - p0]), detector.thresholds[other]) >= \
        detector.in_control_arl[other]


def test_a_budget_must_name_a_share_per_shift() -> None:
    with pytest.raises(ValueError, match="one share per shift"):
        DetectorConfig(shifts=(0.5, 0.2, 0.1))
    assert DetectorConfig(shifts=(0.5,), shift_budget=(1.0,)).shifts == (0.5,)


def test_missing_features_and_values_leave_their_statistics_alone(
        profile: ReferenceProfile) -> None:
    detector = DriftDetector(profile)
    frame = pd.DataFrame({"amount": [np.nan] * 50, "channel": ["pos"] * 50})
    detector.update(frame)
    levels = detector.levels()
    assert levels[("amount", "cusum")] == 0.0
    assert levels[("hour", "cusum")] == 0.0
    assert levels[("prediction", "cusum")] == 0.0
    assert levels[("channel", "share")] > 0.0, "an all-pos run moves the pos share chart"
    assert detector.events == 50


def test_the_number_of_tracked_categories_is_capped() -> None:
    shares = {f"c{i}": 1 / 500 for i in range(500)}
    prediction = PredictionProfile((0.0, 0.5, 1.0), (0.5, 0.5), {"0": 0.5, "1": 0.5}, {"0": 1.0})
    profile = ReferenceProfile(1_000, {}, {"many": CategoricalProfile(shares)}, prediction)
    detector = DriftDetector(profile, DetectorConfig(max_categories=7, predictions=False))
    assert len(detector.statistics) == 7 * 2 + 1
    alarms = detector.update(pd.DataFrame({"many": [f"new-{i}" for i in range(300)]}))
    assert {a.statistic.detail for a in alarms} == {f"up:{OTHER}"}
