"""Prometheus samples: features and tests are the only labels, and their number is capped."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.demo.data import transactions
from agogosml.modelloop.profile import (
    CategoricalProfile,
    NumericProfile,
    PredictionProfile,
    ReferenceProfile,
)
from agogosml.monitor.drift import DetectorConfig, DriftDetector, drift_samples, window_drift
from agogosml.monitor.drift.metrics import (
    DETECTOR_ALARMS,
    DETECTOR_LEVEL,
    OTHER_FEATURES,
    PVALUE,
    SCORE,
)
from bench.drift import Model, new_category

TESTS = {"psi", "ks_statistic", "js_distance", "unseen_share", "ks", "chi2", "cusum", "share"}


def test_a_window_and_a_detector_become_labelled_samples(model: Model) -> None:
    frame = new_category(transactions(2_000, seed=41), 0.1, seed=2)
    features, probabilities = model.stream(frame)
    detector = DriftDetector(model.profile)
    detector.update(features, probabilities)
    samples = drift_samples(window_drift(model.profile, features, probabilities), detector)
    keys = [(s.metric, s.labels) for s in samples]
    assert len(keys) == len(set(keys))
    assert {s.metric for s in samples} == {SCORE, PVALUE, DETECTOR_LEVEL, DETECTOR_ALARMS}
    assert all(dict(s.labels).keys() == {"feature", "test"} for s in samples)
    assert {dict(s.labels)["test"] for s in samples} <= TESTS
    features_seen = {dict(s.labels)["feature"] for s in samples}
    assert features_seen == {*model.profile.numeric, *model.profile.categorical, "prediction",
                             "prediction_class"}
    by_key = {(s.metric, dict(s.labels)["feature"], dict(s.labels)["test"]): s.value
              for s in samples}
    assert by_key[(SCORE, "merchant_category", "unseen_share")] > 0.05
    assert by_key[(DETECTOR_ALARMS, "merchant_category", "share")] >= 1
    assert "crypto" not in repr(samples)


@settings(database=None, derandomize=True, max_examples=15, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(1, 2_000))
def test_cardinality_is_bounded_whatever_the_profile_and_the_values(
        features: int, max_features: int, distinct: int) -> None:
    rng = np.random.default_rng(features * 7 + distinct)
    numeric = {f"n{i:03d}": NumericProfile.of(pd.Series(rng.normal(size=200)))
               for i in range(features)}
    categorical = {f"c{i:03d}": CategoricalProfile({"a": 0.5, "b": 0.5})
                   for i in range(features // 3)}
    prediction = PredictionProfile((0.0, 0.5, 1.0), (0.5, 0.5), {"0": 0.5, "1": 0.5}, {})
    profile = ReferenceProfile(200, numeric, categorical, prediction)
    frame = pd.DataFrame({name: rng.normal(size=distinct) for name in numeric}
                         | {name: [f"id-{i}" for i in range(distinct)] for name in categorical})
    probabilities = rng.dirichlet([1, 1], distinct)
    detector = DriftDetector(profile, DetectorConfig(max_features=max_features))
    detector.update(frame, probabilities)
    samples = drift_samples(window_drift(profile, frame, probabilities), detector,
                            max_features=max_features)
    labels = {dict(s.labels)["feature"] for s in samples}
    assert len(labels) <= max_features + 1
    assert len(samples) <= (max_features + 1) * (len(TESTS) + 2)
    assert not any(label.startswith("id-") for label in labels)
    if features + features // 3 + 2 > max_features:
        assert OTHER_FEATURES in labels
