"""A realistic monitor dataset for the dashboard's tests and its README screenshot: a real
SQLite event store with two model versions of a fraud model (the champion for a day, a
canary for the last two hours), firings of trigger rules, and a `MonitorView` that answers
live figures from that store and hand-made drift and performance figures.

`hostile=True` also puts markup where the stream decides the text: a feature name,
category values, a dead-letter reason and a rule name."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from agogosml.monitor.performance import history_from_store
from agogosml.monitor.store import (
    AsyncEventStore,
    Firing,
    Label,
    ScoredEvent,
    SqliteEventStore,
)
from agogosml.monitor.store.base import now_ms
from agogosml.monitor.view import (
    CalibrationBin,
    FeatureDrift,
    LiveSnapshot,
    PerformanceHistory,
    VersionDrift,
    VersionPerformance,
)

MODEL = "fraud-detector"
CHAMPION, CANARY = "3", "4"
HOSTILE_FEATURE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_CATEGORY = "<script>window.__pwned=2</script>"
HOSTILE_RULE = "<b onmouseover=window.__pwned=3>rule</b>"
CATEGORIES = ["grocery", "travel", "online", "fuel", "restaurants"]
COUNTRIES = ["US", "GB", "DE", "FR", "IN"]
MINUTE = 60_000
HOUR = 60 * MINUTE


@dataclass
class Dataset:
    now_ms: int
    events: list[ScoredEvent] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    """Ground truth 10 minutes late, drawn from each event's own fraud score (so the
    models are calibrated), for the events older than that."""

    def of_version(self, version: str) -> list[ScoredEvent]:
        return [e for e in self.events if e.model_version == version]


def _features(rng: random.Random, version: str, hostile: bool) -> dict[str, object]:
    shift = 0.35 if version == CANARY else 0.0  # the canary sees larger amounts: drift
    features: dict[str, object] = {
        "amount": round(math.exp(rng.gauss(3.4 + shift, 0.9)), 2),
        "merchant_category": rng.choices(CATEGORIES, weights=[5, 2, 4, 2, 3])[0],
        "hour": rng.randrange(24),
        "country": rng.choices(COUNTRIES, weights=[6, 2, 2, 1, 1])[0],
    }
    if hostile:
        features[HOSTILE_FEATURE] = rng.choice([HOSTILE_CATEGORY, "plain"])
    return features


def _event(rng: random.Random, number: int, version: str, at_ms: int,
           hostile: bool) -> ScoredEvent:
    features = _features(rng, version, hostile)
    amount = float(features["amount"])  # type: ignore[arg-type]
    fraud = min(0.97, max(0.01, rng.betavariate(1.2, 14) + (0.45 if amount > 150 else 0)))
    latency = int(rng.lognormvariate(3.6, 0.5))
    return ScoredEvent(
        event_id=f"tx-{number:06d}", subject=f"card-{rng.randrange(400):04d}",
        event_time_ms=at_ms, scored_at_ms=at_ms + latency, model_name=MODEL,
        model_version=version, prediction="fraud" if fraud > 0.5 else "legit",
        scores={"fraud": round(fraud, 4), "legit": round(1 - fraud, 4)}, features=features,
        ingested_at_ms=at_ms + latency + 5)


def build_dataset(*, hostile: bool, seed: int = 7) -> Dataset:
    """A day of the champion at one event a minute, two hours of the canary, and the last
    20 minutes at full rate (about one event a second in all)."""
    rng = random.Random(seed)
    now = now_ms()
    data = Dataset(now)
    number = 0
    for minute in range(24 * 60, 20, -1):
        for version in (CHAMPION, CANARY) if minute <= 120 else (CHAMPION,):
            number += 1
            at = now - minute * MINUTE + rng.randrange(MINUTE)
            data.events.append(_event(rng, number, version, at, hostile))
    for second in range(20 * 60, 0, -1):
        wave = 1 + 0.35 * math.sin(second / 110)
        for version, rate in ((CHAMPION, 0.6), (CANARY, 0.25)):
            if rng.random() < rate * wave:
                number += 1
                data.events.append(_event(rng, number, version, now - second * 1000, hostile))
    labeller = random.Random(seed + 1)
    data.labels = [Label(e.event_id, "fraud" if labeller.random() < e.scores["fraud"]
                         else "legit", e.event_time_ms + 10 * MINUTE)
                   for e in data.events if e.event_time_ms < now - 10 * MINUTE]
    data.firings = [
        Firing("drift: amount psi > 0.2", now - 95 * MINUTE,
               {"feature": "amount", "psi": 0.27, "model_version": CANARY}, "retrain",
               "started MLflow run 7c1e42"),
        Firing("dead letters > 1%", now - 6 * HOUR, {"share": 0.013, "reason": "schema"},
               "alert", "posted to #fraud-oncall"),
        Firing("canary: roc_auc below champion", now - 40 * MINUTE,
               {"champion": 0.91, "canary": 0.87, "labelled": 812}, "hold rollout",
               "canary kept at 20%"),
        Firing("drift: country chi2 p < 0.001", now - 14 * HOUR,
               {"feature": "country", "pvalue": 0.0004}, "retrain",
               "failed: MLflow unreachable"),
    ]
    if hostile:
        data.firings.append(Firing(HOSTILE_RULE, now - 10 * MINUTE,
                                   {HOSTILE_FEATURE: HOSTILE_CATEGORY}, "alert", "sent"))
    return data


def open_store(path: Path, data: Dataset) -> SqliteEventStore:
    store = SqliteEventStore(path)
    store.insert_events(data.events)
    store.add_labels(data.labels)
    for firing in data.firings:
        store.record_firing(firing)
    return store


def _numeric(name: str, bins: list[str], reference: list[float], live: list[float],
             level: float, alarms: int, psi: float, pvalue: float) -> FeatureDrift:
    return FeatureDrift(feature=name, kind="numeric", n=900, psi=psi, pvalue=pvalue,
                        js_distance=None, detector_level=level, alarms=alarms, bins=bins,
                        reference=reference, live=live)


def _categorical(name: str, bins: list[str], reference: list[float], live: list[float],
                 level: float, psi: float, pvalue: float, js: float) -> FeatureDrift:
    return FeatureDrift(feature=name, kind="categorical", n=900, psi=psi, pvalue=pvalue,
                        js_distance=js, detector_level=level, alarms=0, bins=bins,
                        reference=reference, live=live)


AMOUNT_BINS = ["≤ 10", "(10, 20]", "(20, 40]", "(40, 80]", "(80, 160]", "(160, 320]", "> 320"]
AMOUNT_REFERENCE = [0.08, 0.14, 0.25, 0.27, 0.16, 0.07, 0.03]


def drift_of(hostile: bool) -> list[VersionDrift]:
    def features(amount_live: list[float], level: float, alarms: int,
                 psi: float) -> list[FeatureDrift]:
        found = [
            _numeric("amount", AMOUNT_BINS, AMOUNT_REFERENCE, amount_live, level, alarms,
                     psi, 0.0002 if psi > 0.1 else 0.41),
            _categorical("merchant_category", [*CATEGORIES, "__other__"],
                         [0.31, 0.12, 0.25, 0.12, 0.19, 0.01],
                         [0.30, 0.13, 0.26, 0.11, 0.19, 0.01], 0.12, 0.004, 0.72, 0.03),
            _categorical("country", [*COUNTRIES, "__other__"],
                         [0.50, 0.17, 0.16, 0.08, 0.08, 0.01],
                         [0.46, 0.18, 0.17, 0.09, 0.09, 0.01], 0.41, 0.011, 0.22, 0.05),
            _numeric("hour", ["≤ 6", "(6, 12]", "(12, 18]", "> 18"],
                     [0.25, 0.25, 0.25, 0.25], [0.24, 0.26, 0.25, 0.25], 0.08, 0, 0.001,
                     0.93),
            FeatureDrift(feature="prediction", kind="prediction_class", n=900, psi=psi / 3,
                         pvalue=0.08, js_distance=0.06, detector_level=level / 2, alarms=0,
                         bins=["legit", "fraud"], reference=[0.95, 0.05],
                         live=[0.93 - psi / 10, 0.07 + psi / 10]),
        ]
        if hostile:
            found.append(_categorical(HOSTILE_FEATURE, [HOSTILE_CATEGORY, "plain"],
                                      [0.5, 0.5], [0.55, 0.45], 0.2, 0.01, 0.3, 0.04))
        return found

    return [
        VersionDrift(model_name=MODEL, model_version=CHAMPION, profile="loaded", events=2_530,
                     window_events=900,
                     features=features([0.07, 0.15, 0.24, 0.27, 0.17, 0.07, 0.03], 0.21, 0,
                                       0.006)),
        VersionDrift(model_name=MODEL, model_version=CANARY, profile="loaded", events=420,
                     window_events=300,
                     features=features([0.04, 0.09, 0.19, 0.27, 0.22, 0.13, 0.06], 1.34, 2,
                                       0.27)),
    ]


def _calibration(skew: float) -> list[CalibrationBin]:
    return [CalibrationBin(predicted=p, observed=min(1.0, max(0.0, p + skew * p * (1 - p))),
                           n=max(8, int(900 * math.exp(-6 * p))))
            for p in (0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)]


PERFORMANCE: list[VersionPerformance] = [
    VersionPerformance(model_name=MODEL, model_version=CHAMPION, window_s=3_600, labelled=1_812,
                       accuracy=0.962, precision=0.81, recall=0.74, roc_auc=0.912,
                       log_loss=0.118, calibration=_calibration(-0.12)),
    VersionPerformance(model_name=MODEL, model_version=CANARY, window_s=3_600, labelled=812,
                       accuracy=0.951, precision=0.72, recall=0.78, roc_auc=0.874,
                       log_loss=0.151, calibration=_calibration(0.35)),
]


class StoreView:
    """A `MonitorView` over a real store: live figures computed from its events on every
    call; drift and performance as the monitor would report them for this dataset."""

    window_s = 300.0

    def __init__(self, store: SqliteEventStore, *, hostile: bool) -> None:
        self._sync = store
        self._async = AsyncEventStore(store)
        self._hostile = hostile

    @property
    def store(self) -> AsyncEventStore:
        return self._async

    def live(self) -> LiveSnapshot:
        now = now_ms()
        events: list[ScoredEvent] = []
        cursor: str | None = None
        while True:
            page = self._sync.events(now - int(self.window_s * 1000), now, limit=500,
                                     cursor=cursor)
            events.extend(page.events)
            if page.cursor is None:
                break
            cursor = page.cursor
        latencies = sorted(e.scored_at_ms - e.event_time_ms for e in events)
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else None
        predictions = [str(e.prediction) for e in events]
        stored = sum(c.count for c in self._sync.counts(0, now + 1, 86_400_000))
        dead_letters = {"schema": 12.0, "not json": 3.0, "too large": 1.0}
        if self._hostile:
            dead_letters[HOSTILE_CATEGORY] = 2.0
        return LiveSnapshot(
            at_ms=now, window_s=self.window_s, events_per_s=len(events) / self.window_s,
            latency_ms_p50=quantiles[49] if quantiles else None,
            latency_ms_p99=quantiles[98] if quantiles else None,
            stored_total=stored, skipped_total=4, store_failures_total=0, labels_total=2_624,
            prediction_shares={p: predictions.count(p) / len(predictions)
                               for p in sorted(set(predictions))},
            dead_letters=dead_letters, errors={"app 5xx": 2.0, "writer failed": 1.0})

    def drift(self) -> list[VersionDrift]:
        return drift_of(self._hostile)

    async def performance_history(self, start_ms: int, end_ms: int,
                                  window_ms: int) -> PerformanceHistory:
        return await history_from_store(self._async, start_ms, end_ms, window_ms, "fraud")

    def performance(self) -> list[VersionPerformance]:
        return PERFORMANCE
