"""What the monitor knows now: per model version drift (`VersionWatch`), live pace
(`LiveStats`), performance from labels, and the other services' counters. It implements
`MonitorView` for the dashboard and gives the trigger rules their metric values.

Ingestion calls `on_stored` with every batch the store took; `tick` (every few seconds)
does the slow parts off the event loop: loading reference profiles, reading labelled
predictions, scraping the services. At most `max_versions` model versions are watched
(the most recently seen), so neither memory nor Prometheus series grow with the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agogosml.monitor.drift import DetectorConfig
from agogosml.monitor.ingest import IngestCounts
from agogosml.monitor.live import LiveStats
from agogosml.monitor.performance import POSITIVE, history_from_store, version_performance
from agogosml.monitor.references import ReferenceProfiles
from agogosml.monitor.scrape import MetricsScraper
from agogosml.monitor.store.base import AsyncEventStore, ScoredEvent
from agogosml.monitor.versions import VersionWatch
from agogosml.monitor.view import (
    LiveSnapshot,
    PerformanceHistory,
    VersionDrift,
    VersionPerformance,
)

log = logging.getLogger(__name__)

VersionKey = tuple[str, str]


@dataclass(frozen=True)
class Windows:
    drift_events: int = 1_000
    """Latest events per version the window tests (PSI, KS, chi-square) run on."""
    performance_s: float = 3_600.0
    """Event-time span the live performance figures cover."""
    live_s: float = 60.0


class MonitorState:
    def __init__(self, store: AsyncEventStore, profiles: ReferenceProfiles,
                 scraper: MetricsScraper | None = None, windows: Windows | None = None,
                 detector: DetectorConfig | None = None, max_versions: int = 4,
                 positive: str = POSITIVE, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.profiles = profiles
        self.scraper = scraper or MetricsScraper({})
        self.windows = windows or Windows()
        self.detector = detector or DetectorConfig()
        self.max_versions = max_versions
        self.positive = positive
        self.clock = clock
        self.watches: OrderedDict[VersionKey, VersionWatch] = OrderedDict()
        self.live_stats = LiveStats(self.windows.live_s, clock=clock)
        self.events_counts = IngestCounts()
        self.labels_counts = IngestCounts()
        self.alarms_total = 0
        self.analysis_failures = 0
        self._performance: dict[VersionKey, VersionPerformance] = {}

    @property
    def store(self) -> AsyncEventStore:
        return self._store

    def on_stored(self, events: Sequence[ScoredEvent]) -> None:
        """Feed a stored batch to the statistics. It never raises: the store has the events
        and their offsets are committed next, so a batch the statistics cannot take (a
        bug, data no one foresaw) is counted and logged, and ingestion goes on."""
        try:
            self._observe(events)
        except Exception as error:  # whatever it is, it must not stop ingestion
            self.analysis_failures += 1
            log.exception("statistics skipped a stored batch",
                          extra={"events": len(events), "error": type(error).__name__})

    def _observe(self, events: Sequence[ScoredEvent]) -> None:
        by_version: defaultdict[VersionKey, list[ScoredEvent]] = defaultdict(list)
        for event in events:
            by_version[(event.model_name, event.model_version)].append(event)
        for key, members in by_version.items():
            self.alarms_total += self._watch(key).observe(members)
        self.live_stats.observe(events)

    def _watch(self, key: VersionKey) -> VersionWatch:
        watch = self.watches.get(key)
        if watch is None:
            watch = VersionWatch(key[0], key[1], self.windows.drift_events, self.detector,
                                 positive=self.positive)
            self.watches[key] = watch
            while len(self.watches) > self.max_versions:
                evicted, _ = self.watches.popitem(last=False)
                self._performance.pop(evicted, None)
        self.watches.move_to_end(key)
        return watch

    async def tick(self) -> None:
        """Load missing profiles, recompute performance, read the services' counters."""
        for key, watch in list(self.watches.items()):
            if watch.profile is None:
                profile, state = await asyncio.to_thread(self.profiles.get, *key)
                watch.set_profile(profile, state)
        now_ms = int(self.clock() * 1000)
        start_ms = now_ms - int(self.windows.performance_s * 1000)
        for key in list(self.watches):
            rows = await self._store.labelled(key[1], start_ms, now_ms + 1)
            rows = [row for row in rows if row.event.model_name == key[0]]
            self._performance[key] = version_performance(
                key[0], key[1], self.windows.performance_s, rows, self.positive)
        await self.scraper.scrape()

    def live(self) -> LiveSnapshot:
        stats = self.live_stats
        counters = self.scraper.counters
        return LiveSnapshot(
            at_ms=int(self.clock() * 1000), window_s=stats.window_s,
            events_per_s=stats.events_per_s(), latency_ms_p50=stats.latency_ms(0.5),
            latency_ms_p99=stats.latency_ms(0.99), stored_total=self.events_counts.stored,
            skipped_total=self.events_counts.skipped,
            store_failures_total=(self.events_counts.store_failures
                                  + self.labels_counts.store_failures),
            labels_total=self.labels_counts.stored,
            prediction_shares=stats.prediction_shares(),
            dead_letters=dict(counters.dead_letters), errors=dict(counters.errors))

    def drift(self) -> list[VersionDrift]:
        return [watch.view() for watch in reversed(self.watches.values())]

    async def performance_history(self, start_ms: int, end_ms: int,
                                  window_ms: int) -> PerformanceHistory:
        return await history_from_store(self._store, start_ms, end_ms, window_ms,
                                        self.positive)

    def metric_snapshot(self) -> dict[str, float]:
        """The values trigger rules read, named as their selectors spell them
        (agogosml.monitor.triggers.selectors):

            drift_psi{model_version=V,feature=F}     window PSI of a feature (or prediction)
            drift_pvalue{model_version=V,feature=F}  its KS (numeric) or chi-square p-value
            drift_level{model_version=V,feature=F}   online detector level (1.0 = alarm)
            drift_alarms_total{model_version=V}      online detector alarms so far
            accuracy|precision|recall|roc_auc|log_loss{model_version=V}, labelled{…}
            prediction_share{prediction=P}, events_per_s, latency_ms_p99,
            dead_letters_total{reason=R}
        """
        values: dict[str, float] = {}
        for (_, version), watch in self.watches.items():
            tag = f"model_version={_quoted(version)}"
            if watch.detector is not None:
                values[f"drift_alarms_total{{{tag}}}"] = float(watch.detector.alarm_counts.sum())
            for feature in watch.view()["features"]:
                labels = f"{tag},feature={_quoted(feature['feature'])}"
                values[f"drift_psi{{{labels}}}"] = feature["psi"]
                values[f"drift_pvalue{{{labels}}}"] = feature["pvalue"]
                values[f"drift_level{{{labels}}}"] = feature["detector_level"]
        for figures in self.performance():
            tag = f"model_version={_quoted(figures['model_version'])}"
            values[f"labelled{{{tag}}}"] = float(figures["labelled"])
            for metric in ("accuracy", "precision", "recall", "roc_auc", "log_loss"):
                value = figures[metric]
                if value is not None:
                    values[f"{metric}{{{tag}}}"] = float(value)
        for prediction, share in self.live_stats.prediction_shares().items():
            values[f"prediction_share{{prediction={_quoted(prediction)}}}"] = share
        values["events_per_s"] = self.live_stats.events_per_s()
        latency = self.live_stats.latency_ms(0.99)
        if latency is not None:
            values["latency_ms_p99"] = latency
        for reason, count in self.scraper.counters.dead_letters.items():
            values[f"dead_letters_total{{reason={_quoted(reason)}}}"] = count
        return values

    def performance(self) -> list[VersionPerformance]:
        return [self._performance[key] for key in reversed(self.watches)
                if key in self._performance]


def _quoted(value: str) -> str:
    """A label value as a selector spells it: double-quoted, without quotes or newlines
    inside (they cannot be spelled; such a value is never a rule's target)."""
    return '"' + value.replace('"', "'").replace("\n", " ") + '"'
