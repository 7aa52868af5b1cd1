"""Drift of one model version: its reference profile, its online detector and a window of
its latest events, turned into the dashboard's `VersionDrift` on request.

Events are fed in as ingestion stores them. Until the version's profile is loaded they
only fill the window; when it arrives, the window is fed to the detector once, so the
detector sees every event it can from the first profile on.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from agogosml.modelloop.profile import PredictionProfile, ReferenceProfile, value_shares
from agogosml.monitor.drift import DetectorConfig, DriftDetector, WindowReport, window_drift
from agogosml.monitor.drift.online import PREDICTION, PREDICTION_CLASS
from agogosml.monitor.performance import positive_probability
from agogosml.monitor.store.base import ScoredEvent
from agogosml.monitor.view import FeatureDrift, FeatureKind, VersionDrift

MAX_CATEGORY_BARS = 12
OTHER_BAR = "__other__"


def _edge(value: float) -> str:
    return f"{value:.4g}"


def numeric_bins(edges: Sequence[float]) -> list[str]:
    """Labels of a profile's bins: (-inf, e1], (e1, e2], …, (e[k-1], +inf)."""
    inner = list(edges[1:-1])
    if not inner:
        return ["all"]
    labels = [f"≤ {_edge(inner[0])}"]
    labels += [f"({_edge(a)}, {_edge(b)}]" for a, b in itertools.pairwise(inner)]
    return [*labels, f"> {_edge(inner[-1])}"]


def category_bars(reference: dict[str, float],
                  live: dict[str, float]) -> tuple[list[str], list[float], list[float]]:
    """The most frequent reference categories, then everything else as one bar."""
    names = [name for name, _ in sorted(reference.items(), key=lambda i: -i[1])]
    shown = names[:MAX_CATEGORY_BARS]
    ref = [reference[name] for name in shown]
    now = [live.get(name, 0.0) for name in shown]
    ref_rest = max(0.0, 1.0 - sum(ref))
    live_rest = max(0.0, 1.0 - sum(now)) if live else 0.0
    if ref_rest > 1e-12 or live_rest > 1e-12:
        return [*shown, OTHER_BAR], [*ref, ref_rest], [*now, live_rest]
    return shown, ref, now


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


@dataclass
class VersionWatch:
    model_name: str
    model_version: str
    window_events: int = 1_000
    config: DetectorConfig = field(default_factory=DetectorConfig)
    positive: str = "1"
    """The class whose score is the predicted probability the profile describes."""
    profile: ReferenceProfile | None = None
    profile_state: str = "loading"
    detector: DriftDetector | None = None
    events: int = 0
    features: deque[dict[str, Any]] = field(init=False)
    probabilities: deque[float] = field(init=False)
    _revision: int = field(init=False, default=0)
    """Bumped by every change; the window's tests are computed once per revision, however
    many readers (ticks, scrapes, the dashboard) ask."""
    _summary_of: tuple[int, WindowReport | None, VersionDrift] | None = field(
        init=False, default=None)

    def __post_init__(self) -> None:
        self.features = deque(maxlen=self.window_events)
        self.probabilities = deque(maxlen=self.window_events)

    def set_profile(self, profile: ReferenceProfile | None, state: str) -> None:
        self._revision += 1
        self.profile_state = state
        if profile is None or self.profile is not None:
            return
        self.profile = profile
        self.detector = DriftDetector(profile, self.config)
        if self.features:
            self._detect(list(self.features), list(self.probabilities))

    def observe(self, events: Sequence[ScoredEvent]) -> int:
        """Feed a version's events in order; return the detector alarms they raised."""
        rows = [event.features if isinstance(event.features, dict) else {} for event in events]
        probabilities = [_probability(event.scores, self.positive) for event in events]
        self._revision += 1
        self.features.extend(rows)
        self.probabilities.extend(probabilities)
        self.events += len(events)
        return self._detect(rows, probabilities) if self.detector is not None else 0

    def _detect(self, rows: list[dict[str, Any]], probabilities: list[float]) -> int:
        assert self.detector is not None
        frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
        return len(self.detector.update(frame.reindex(range(len(rows))),
                                        _probability_array(probabilities)))

    def window_report(self) -> WindowReport | None:
        return self._summary()[0]

    def view(self) -> VersionDrift:
        return self._summary()[1]

    def _summary(self) -> tuple[WindowReport | None, VersionDrift]:
        if self._summary_of is None or self._summary_of[0] != self._revision:
            report: WindowReport | None = None
            features: list[FeatureDrift] = []
            if self.profile is not None and self.features:
                frame = pd.DataFrame.from_records(list(self.features))
                report = window_drift(self.profile, frame,
                                      _probability_array(list(self.probabilities)))
                features = self._features(report, self.profile, frame)
            view = VersionDrift(model_name=self.model_name, model_version=self.model_version,
                                profile=self.profile_state, events=self.events,
                                window_events=len(self.features), features=features)
            self._summary_of = (self._revision, report, view)
        return self._summary_of[1], self._summary_of[2]

    def _features(self, report: WindowReport, profile: ReferenceProfile,
                  frame: pd.DataFrame) -> list[FeatureDrift]:
        levels: dict[str, float] = {}
        alarms: dict[str, int] = {}
        if self.detector is not None:
            for (name, _), level in self.detector.levels().items():
                levels[name] = max(levels.get(name, 0.0), level)
            for (name, _), count in self.detector.alarm_totals().items():
                alarms[name] = alarms.get(name, 0) + count
        out: list[FeatureDrift] = []
        for name, numeric in sorted(report.numeric.items()):
            num_profile = profile.numeric[name]
            live = num_profile.bin_shares(pd.to_numeric(frame[name], errors="coerce"))
            out.append(self._feature(name, "numeric", numeric.n, numeric.psi,
                                     numeric.ks_pvalue, None, levels, alarms,
                                     numeric_bins(num_profile.edges), num_profile.shares, live))
        for name, cat in sorted(report.categorical.items()):
            bins, ref, now = category_bars(profile.categorical[name].shares,
                                           value_shares(frame[name]))
            out.append(self._feature(name, "categorical", cat.n, cat.psi, cat.chi2_pvalue,
                                     cat.js_distance, levels, alarms, bins, ref, now))
        if report.prediction is not None:
            out.extend(self._prediction(report, profile.prediction, levels, alarms))
        return out

    def _prediction(self, report: WindowReport, profile: PredictionProfile,
                    levels: dict[str, float], alarms: dict[str, int]) -> list[FeatureDrift]:
        assert report.prediction is not None
        probabilities = _probability_array(list(self.probabilities))
        assert probabilities is not None
        counts, _ = np.histogram(probabilities, bins=profile.edges)
        live = [float(c) / max(1, probabilities.size) for c in counts]
        labels = [f"[{a:.1f}, {b:.1f})" for a, b in itertools.pairwise(profile.edges)]
        probability = report.prediction.probability
        classes = report.prediction.classes
        predicted = pd.Series((probabilities >= 0.5).astype(int))
        bins, ref, now = category_bars(profile.class_shares, value_shares(predicted))
        return [
            self._feature(PREDICTION, "prediction", probability.n, probability.psi,
                          probability.ks_pvalue, None, levels, alarms, labels,
                          profile.shares, live),
            self._feature(PREDICTION_CLASS, "prediction_class", classes.n, classes.psi,
                          classes.chi2_pvalue, classes.js_distance, levels, alarms, bins,
                          ref, now),
        ]

    @staticmethod
    def _feature(name: str, kind: FeatureKind, n: int, psi: float, pvalue: float,
                 js: float | None, levels: dict[str, float], alarms: dict[str, int],
                 bins: list[str], reference: Sequence[float],
                 live: Sequence[float]) -> FeatureDrift:
        return FeatureDrift(feature=name, kind=kind, n=n, psi=_finite(psi),
                            pvalue=_finite(pvalue),
                            js_distance=None if js is None else _finite(js),
                            detector_level=levels.get(name, 0.0), alarms=alarms.get(name, 0),
                            bins=bins, reference=[float(x) for x in reference],
                            live=[float(x) for x in live])


def _probability(scores: Any, positive: str) -> float:
    value = positive_probability(scores, positive)
    return math.nan if value is None else value


def _probability_array(values: list[float]) -> np.ndarray[Any, Any] | None:
    """The positive-class probabilities, or None when any event lacks one (the
    prediction's drift is then left out rather than computed on part of the window)."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    return None if np.isnan(array).any() else array

