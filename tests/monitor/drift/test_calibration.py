"""Run lengths computed from a chart's step distribution, against exact chains and a
seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.monitor.drift.calibration import (
    adjustment_coefficient,
    calibrated_threshold,
    cusum_arl,
)
from agogosml.monitor.drift.online import bin_scores


def lattice_arl(steps: list[int], probabilities: list[float], h: int) -> float:
    """ARL of max(0, S + y) > h from 0 for integer steps: the chain on 0..h, solved dense."""
    q = np.zeros((h + 1, h + 1))
    for state in range(h + 1):
        for step, p in zip(steps, probabilities, strict=True):
            target = max(0, state + step)
            if target <= h:
                q[state, target] += p
    return float(np.linalg.solve(np.eye(h + 1) - q, np.ones(h + 1))[0])


@settings(database=None, derandomize=True, deadline=None, max_examples=40)
@given(st.lists(st.integers(-3, 3), min_size=2, max_size=4, unique=True),
       st.lists(st.floats(0.05, 1.0), min_size=4, max_size=4), st.integers(2, 12))
def test_the_arl_is_exact_for_steps_on_the_grid(steps: list[int], raw: list[float],
                                                h: int) -> None:
    weights = np.asarray(raw[:len(steps)]) / sum(raw[:len(steps)])
    # 64 cells per unit (exact in binary) put every integer step on the grid, so the
    # grid's chain is the chain itself.
    computed = cusum_arl(np.asarray(steps, float), weights, float(h), cells=h * 64)
    if max(steps) <= 0:
        assert computed == math.inf
    else:
        assert computed == pytest.approx(lattice_arl(steps, list(weights), h), rel=1e-9)


def test_the_arl_of_normal_scores_matches_a_seeded_simulation() -> None:
    shares = np.asarray([0.2, 0.23, 0.22, 0.16, 0.1, 0.09])  # Poisson-like collapsed deciles
    steps = bin_scores(shares) - 0.2
    h = calibrated_threshold(steps, shares, 300.0)
    rng = np.random.default_rng(5)
    chains, events = 2_000, 1_500
    draws = steps[rng.choice(shares.size, (events, chains), p=shares)]
    state = np.zeros(chains)
    alarms = 0
    for row in draws:
        state = np.maximum(0.0, state + row)
        over = state > h
        alarms += int(over.sum())
        state[over] = 0.0
    # Chains start at 0 like the detector, so the alarm rate of a renewal process: 1/ARL.
    assert chains * events / alarms == pytest.approx(300.0, rel=0.05)


@pytest.mark.parametrize(("steps", "probabilities", "arl"), [
    ([1.5, 0.4, -0.3, -1.6], [0.1, 0.3, 0.4, 0.2], 10_000.0),
    ([math.log(0.05 / 6e-5), math.log(0.95 / (1 - 6e-5))], [6e-5, 1 - 6e-5], 1e7),
    ([math.log(0.6 / 0.55), math.log(0.4 / 0.45)], [0.55, 0.45], 1e6),
])
def test_the_threshold_gives_at_least_the_arl_asked_for(
        steps: list[float], probabilities: list[float], arl: float) -> None:
    values, weights = np.asarray(steps), np.asarray(probabilities)
    h = calibrated_threshold(values, weights, arl)
    assert cusum_arl(values, weights, h) >= arl
    assert cusum_arl(values, weights, h * 0.98) < arl * 1.001


def test_a_chart_that_cannot_rise_never_alarms() -> None:
    assert cusum_arl(np.asarray([-0.1, 0.0]), np.asarray([0.5, 0.5]), 3.0) == math.inf
    assert calibrated_threshold(np.asarray([-0.1, 0.0]), np.asarray([0.5, 0.5]), 1e4) > 0


def test_the_adjustment_coefficient_of_a_likelihood_ratio_is_one() -> None:
    p0, p1 = 0.3, 0.4
    steps = np.asarray([math.log(p1 / p0), math.log((1 - p1) / (1 - p0))])
    assert adjustment_coefficient(steps, np.asarray([p0, 1 - p0])) == pytest.approx(1.0)


def test_a_chart_without_drift_is_calibrated_too() -> None:
    """k = 0: the in-control mean step is 0 and the ARL grows like h² instead of e^(θh)."""
    steps, weights = np.asarray([1.0, -1.0]), np.asarray([0.5, 0.5])
    h = calibrated_threshold(steps, weights, 200.0)
    assert cusum_arl(steps, weights, h) == pytest.approx(200.0, rel=1e-3)
