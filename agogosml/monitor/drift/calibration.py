"""In-control run lengths of one-sided CUSUMs with discrete steps, computed from the step
distribution instead of approximated.

Every chart of the online detector adds one of a few known step values per event (a bin's
normal score minus k, or a Bernoulli log-likelihood ratio), and under the reference
profile each value's probability is known exactly (its bin's or category's share). The
chart S = max(0, S + y) is then a Markov chain on [0, h]; following Brook & Evans, the
interval is cut into `GRID_CELLS` cells and the expected number of events until S > h,
started at 0, solves a banded linear system. A step landing between two grid points is
split between them in proportion, which keeps the mean step exact (plain rounding to the
nearest point biases a chart whose step is a fraction of a cell every time).

`calibrated_threshold` inverts that: the h whose in-control ARL is the one asked for.
Results are cached by step distribution, so detectors rebuilt from the same profile reuse
them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import linalg, optimize, special

Array = np.ndarray[Any, Any]

GRID_CELLS = 600
"""Cells of [0, h]; 300 and 1,200 cells change the ARL of the demo's charts by < 1%."""
CELLS_PER_STEP = 400
"""At least the largest step / this is a cell's width, which bounds the band of the system
when h is small next to the steps (only met while searching, far below useful ARLs)."""
MIN_THRESHOLD = 1e-9
"""What h = 0 would do (alarm on any rise) while keeping statistic / threshold finite."""
RELATIVE_TOLERANCE = 1e-4
"""Of the threshold search; the ARL moves by about that fraction times h."""


def cusum_arl(steps: Array, probabilities: Array, h: float, cells: int = GRID_CELLS) -> float:
    """Expected events until max(0, S + y) first exceeds h, from S = 0, for independent
    steps y equal to steps[i] with probability probabilities[i]; inf if it never can."""
    values = np.asarray(steps, dtype=float)
    weights = np.asarray(probabilities, dtype=float)
    keep = weights > 0
    if not np.any(keep):
        return math.inf
    values, weights = values[keep], weights[keep] / weights[keep].sum()
    if not np.any(values > 0):
        return math.inf
    if h <= 0:
        return 1.0 / float(weights[values > 0].sum())
    width = max(h / cells, float(np.max(np.abs(values))) / CELLS_PER_STEP)
    cells = math.ceil(h / width)
    width = h / cells
    states = np.arange(cells + 1)
    below = math.ceil(max(0.0, -float(values.min())) / width) + 1
    above = math.ceil(max(0.0, float(values.max())) / width) + 1
    # (I - Q) in solve_banded's layout: banded[above + i - j, j] holds entry (i, j).
    banded = np.zeros((below + above + 1, cells + 1))
    banded[above] = 1.0
    for value, weight in zip(values, weights, strict=True):
        target = np.maximum(states + value / width, 0.0)
        stays = target <= cells  # beyond: an alarm, which leaves the chain
        low = np.floor(target[stays]).astype(int)
        upper_part = target[stays] - low
        rows = states[stays]
        np.add.at(banded, (above + rows - low, low), -weight * (1.0 - upper_part))
        split = upper_part > 0
        np.add.at(banded, (above + rows[split] - low[split] - 1, low[split] + 1),
                  -weight * upper_part[split])
    expected = linalg.solve_banded((below, above), banded, np.ones(cells + 1))
    return float(expected[0])


def calibrated_threshold(steps: Array, probabilities: Array, arl: float) -> float:
    """The threshold h at which the chart's in-control ARL (see `cusum_arl`) is `arl`."""
    return _threshold(tuple(float(v) for v in steps), tuple(float(p) for p in probabilities),
                      float(arl))


def adjustment_coefficient(steps: Array, probabilities: Array) -> float:
    """The θ > 0 with E[e^(θy)] = 1 (for steps of negative mean that can be positive): the
    in-control ARL grows about as e^(θh), so θ is the slope of log ARL in h. Without such a
    θ (a mean step of 0 or more) the ARL grows more slowly; 1 / the largest step then."""
    values = np.asarray(steps, dtype=float)
    weights = np.asarray(probabilities, dtype=float)
    if float(np.dot(values, weights)) >= 0:
        return 1.0 / float(np.max(np.abs(values)))
    logs = np.log(weights)

    def log_moment(theta: float) -> float:
        return float(special.logsumexp(logs + theta * values))

    high = 1.0
    while log_moment(high) <= 0:
        high *= 2
    return float(optimize.brentq(log_moment, high * 1e-9, high, rtol=1e-6))


@lru_cache(maxsize=4_096)
def _threshold(steps: tuple[float, ...], probabilities: tuple[float, ...], arl: float) -> float:
    keep = np.asarray(probabilities) > 0
    values = np.asarray(steps)[keep]
    weights = np.asarray(probabilities)[keep] / np.asarray(probabilities)[keep].sum()

    def gap(h: float) -> float:
        return math.log(cusum_arl(values, weights, h)) - math.log(arl)

    if not np.any(values > 0):
        return 1.0  # the chart never rises, so no positive threshold is ever crossed
    if gap(0.0) >= 0:
        return MIN_THRESHOLD
    slope = adjustment_coefficient(values, weights)
    # Newton steps with the asymptotic slope of log ARL find a bracket near the answer, so
    # the grid is never solved at a small h, where its band is wide and slow.
    h = math.log(arl) / slope
    error = gap(h)
    if error < 0:
        while error < 0:
            low, h = h, max(h - error / slope, h * 1.05)
            error = gap(h)
        high = h
    else:
        while error >= 0:
            high, h = h, max(min(h - error / slope, h * 0.95), h * 0.5)
            error = gap(h)
        low = h
    h = float(optimize.brentq(gap, low, high, rtol=RELATIVE_TOLERANCE))
    # Charts of a few coarse steps have an ARL that jumps with h: land on the side that
    # keeps at least the ARL asked for.
    while gap(h) < 0:
        h = min(high, h * (1 + RELATIVE_TOLERANCE))
    return h
