"""Window tests: PSI, KS on the decile grid, chi-square and Jensen-Shannon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.demo.data import transactions
from agogosml.modelloop.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from agogosml.monitor.drift import (
    categorical_drift,
    js_distance,
    numeric_drift,
    prediction_drift,
    psi,
    window_drift,
)
from agogosml.monitor.drift.batch import OTHER, chi_square, ks_on_grid
from bench.drift import Model

shares_strategy = st.lists(st.floats(0.01, 1.0), min_size=2, max_size=12).map(
    lambda xs: [x / sum(xs) for x in xs])


@settings(database=None, derandomize=True, deadline=None)  # no example cache in the clone
@given(shares_strategy)
def test_identical_distributions_have_zero_psi_and_js(shares: list[float]) -> None:
    assert psi(shares, shares) == pytest.approx(0.0, abs=1e-12)
    assert js_distance(shares, shares) == pytest.approx(0.0, abs=1e-6)
    counts = np.asarray(shares) * 1_000
    assert ks_on_grid(shares, counts, None)[0] == pytest.approx(0.0, abs=1e-12)
    statistic, p_value = chi_square(shares, counts, 10_000)
    assert statistic == pytest.approx(0.0, abs=1e-9)
    assert p_value == pytest.approx(1.0)


@settings(database=None, derandomize=True, deadline=None)  # no example cache in the clone
@given(shares_strategy, shares_strategy)
def test_psi_and_js_are_non_negative_and_js_is_bounded(p: list[float], q: list[float]) -> None:
    size = min(len(p), len(q))
    a, b = np.asarray(p[:size]) / sum(p[:size]), np.asarray(q[:size]) / sum(q[:size])
    assert psi(a, b) >= -1e-12
    assert 0.0 <= js_distance(a, b) <= 1.0 + 1e-9
    assert js_distance(a, b) == pytest.approx(js_distance(b, a))


def test_disjoint_categories_are_js_distance_one() -> None:
    assert js_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)


@settings(database=None, derandomize=True, max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_psi_ks_and_chi2_grow_with_the_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    profile = NumericProfile.of(pd.Series(rng.normal(0.0, 1.0, 20_000)))
    live = rng.normal(0.0, 1.0, 5_000)
    results = [numeric_drift(profile, live + shift, "x", 20_000) for shift in (0.0, 0.2, 0.5, 1.0)]
    psis = [r.psi for r in results]
    assert psis == sorted(psis)
    assert [r.ks_statistic for r in results] == sorted(r.ks_statistic for r in results)
    assert [r.chi2 for r in results] == sorted(r.chi2 for r in results)
    assert results[0].psi < 0.01
    assert results[-1].psi > 0.5
    assert results[-1].ks_pvalue < 1e-10
    assert results[-1].chi2_pvalue < 1e-10


def test_the_reference_sample_itself_shows_no_drift() -> None:
    rng = np.random.default_rng(3)
    values = pd.Series(rng.lognormal(3.5, 1.1, 10_000))
    profile = NumericProfile.of(values)
    result = numeric_drift(profile, values, "amount", 10_000)
    assert result.psi == pytest.approx(0.0, abs=1e-9)
    assert result.ks_statistic == pytest.approx(0.0, abs=1e-9)
    assert result.ks_pvalue == pytest.approx(1.0)
    assert result.chi2_pvalue == pytest.approx(1.0)


def test_integer_features_with_collapsed_deciles_are_not_flagged_on_ties() -> None:
    rng = np.random.default_rng(5)
    profile = NumericProfile.of(pd.Series(rng.poisson(3, 20_000)))
    assert len(profile.edges) < 11, "repeated deciles collapsed"
    p_values = [numeric_drift(profile, rng.poisson(3, 2_000), "n", 20_000).ks_pvalue
                for _ in range(50)]
    assert sum(p < 0.01 for p in p_values) <= 3
    shifted = numeric_drift(profile, rng.poisson(3.5, 2_000), "n", 20_000)
    assert shifted.ks_pvalue < 1e-6


def test_missing_values_are_left_out_and_reported() -> None:
    profile = NumericProfile.of(pd.Series(np.arange(100, dtype=float)))
    result = numeric_drift(profile, [1.0, None, 50.0, float("nan")], "x")
    assert result.n == 2
    assert result.missing_share == 0.5


def test_an_unseen_category_is_pooled_and_reported() -> None:
    profile = CategoricalProfile({"pos": 0.6, "online": 0.3, "atm": 0.1})
    values = ["pos"] * 55 + ["online"] * 30 + ["atm"] * 5 + ["crypto"] * 7 + ["p2p"] * 3
    result = categorical_drift(profile, values, "channel", reference_rows=5_000)
    assert result.n == 100
    assert result.unseen_share == pytest.approx(0.10)
    assert result.unseen == ("crypto", "p2p")
    assert result.chi2_pvalue < 1e-6
    assert result.js_distance > 0.1
    same = categorical_drift(profile, ["pos"] * 60 + ["online"] * 30 + ["atm"] * 10, "channel",
                             reference_rows=5_000)
    assert same.unseen_share == 0.0
    assert same.unseen == ()
    assert same.js_distance == pytest.approx(0.0, abs=1e-6)
    assert same.chi2_pvalue > 0.9


def test_unseen_names_are_capped_but_their_share_is_exact() -> None:
    profile = CategoricalProfile({"a": 1.0})
    values = [f"id-{i}" for i in range(1_000)]
    result = categorical_drift(profile, values, "x", max_unseen=5)
    assert len(result.unseen) == 5
    assert result.unseen_share == 1.0
    assert OTHER not in result.unseen


def test_booleans_and_missing_values_are_keyed_as_the_profile_keys_them() -> None:
    profile = CategoricalProfile.of(pd.Series([True, False, None, True]))
    result = categorical_drift(profile, [True, False, None, True], "card_present")
    assert result.unseen_share == 0.0
    assert result.js_distance == pytest.approx(0.0, abs=1e-6)


def test_predictions_are_compared_on_the_reference_histogram(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(1)
    low = rng.uniform(0.0, 0.05, 1_000)
    shifted = prediction_drift(profile.prediction, np.column_stack([1 - low, low]))
    high = np.clip(low + 0.6, 0, 1)
    flipped = prediction_drift(profile.prediction, np.column_stack([1 - high, high]))
    assert flipped.probability.psi > shifted.probability.psi
    assert flipped.classes.js_distance > 0.5
    assert flipped.probability.ks_pvalue < 1e-10


def test_a_window_of_live_demo_data_is_close_to_its_reference(model: Model) -> None:
    features, probabilities = model.stream(transactions(5_000, seed=21))
    report = window_drift(model.profile, features, probabilities)
    assert report.n == 5_000
    assert set(report.numeric) == set(model.profile.numeric)
    assert set(report.categorical) == set(model.profile.categorical)
    assert max(r.psi for r in report.numeric.values()) < 0.02
    assert max(r.js_distance for r in report.categorical.values()) < 0.05
    assert report.prediction is not None
    assert report.prediction.probability.psi < 0.02
    drifted, drifted_probabilities = model.stream(
        transactions(5_000, seed=21).assign(distance_from_home_km=lambda f: f[
            "distance_from_home_km"] + 10))
    shifted = window_drift(model.profile, drifted, drifted_probabilities)
    assert shifted.numeric["distance_from_home_km"].psi > 0.25
    assert shifted.numeric["distance_from_home_km"].ks_pvalue < 1e-10
    assert shifted.numeric["amount"].ks_pvalue > 1e-3
