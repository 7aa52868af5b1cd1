"""The monitor's Prometheus metrics, read from its state at scrape time (a collector), so
ingestion pays nothing for them. Bounded cardinality: model versions are the watched ones
(at most `max_versions`), features are the reference profile's names capped by
`drift_samples`, and no id or category value ever becomes a label."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agogosml.monitor.drift import drift_samples
from agogosml.monitor.state import MonitorState

PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "roc_auc", "log_loss")


class MonitorCollector(Collector):
    def __init__(self, state: MonitorState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._ingest()
        yield from self._drift()
        yield from self._performance()

    def _ingest(self) -> Iterator[Metric]:
        for stream, counts in (("events", self.state.events_counts),
                               ("labels", self.state.labels_counts)):
            for name, value, help_text in (
                    ("stored", counts.stored, "new records the store took"),
                    ("skipped", counts.skipped, "records that were not valid (skipped)"),
                    ("store_failures", counts.store_failures, "store writes that failed "
                                                              "(retried)")):
                family = CounterMetricFamily(f"agogosml_monitor_{stream}_{name}",
                                             f"{stream.capitalize()}: {help_text}")
                family.add_metric([], value)
                yield family
        failures = CounterMetricFamily("agogosml_monitor_analysis_failures",
                                       "Stored batches the drift and live statistics could "
                                       "not take (logged; ingestion went on)")
        failures.add_metric([], self.state.analysis_failures)
        yield failures

    def _drift(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        alarms = CounterMetricFamily("agogosml_monitor_drift_alarms",
                                     "Online drift detector alarms, all features",
                                     labels=["model_version"])
        for (_, version), watch in self.state.watches.items():
            alarms.add_metric([version[:40]], float(watch.detector.alarm_counts.sum())
                              if watch.detector is not None else 0.0)
            samples = drift_samples(watch.window_report(), watch.detector)
            for sample in samples:
                family = families.get(sample.metric)
                if family is None:
                    family = GaugeMetricFamily(sample.metric, "Drift against the reference "
                                               "profile (see agogosml.monitor.drift.metrics)",
                                               labels=["model_version", "feature", "test"])
                    families[sample.metric] = family
                family.add_metric([version[:40], *(value for _, value in sample.labels)],
                                  sample.value)
        yield alarms
        yield from families.values()

    def _performance(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("agogosml_monitor_performance",
                                   "Live performance from late labels, per model version",
                                   labels=["model_version", "metric"])
        labelled = GaugeMetricFamily("agogosml_monitor_labelled_events",
                                     "Labelled predictions in the performance window",
                                     labels=["model_version"])
        for figures in self.state.performance():
            version = figures["model_version"][:40]
            labelled.add_metric([version], figures["labelled"])
            for metric in PERFORMANCE_METRICS:
                value = figures[metric]  # type: ignore[literal-required]
                if value is not None:
                    family.add_metric([version, metric], float(value))
        yield family
        yield labelled


def register(state: MonitorState, registry: CollectorRegistry) -> None:
    registry.register(MonitorCollector(state))
