"""The app's Prometheus metrics, registered on the registry it is given."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agogosml.buckets import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS
from agogosml.envelope import ModelRef

MAX_PREDICTION_LABELS = 20
"""Predictions become a label only while few distinct values were seen (a classifier's
classes); beyond that they are counted as 'other' so series stay bounded."""


class AppMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.scored = Counter("agogosml_app_events_scored", "Records scored",
                              ["endpoint", "model", "version"], registry=registry)
        self.rejected = Counter("agogosml_app_records_rejected",
                                "Records the model could not score", ["endpoint"],
                                registry=registry)
        self.requests = Counter("agogosml_app_requests", "Requests answered, by status",
                                ["endpoint", "status"], registry=registry)
        self.predict_latency = Histogram("agogosml_app_predict_latency_seconds",
                                         "Time in the model's predict call", ["endpoint"],
                                         buckets=LATENCY_BUCKETS, registry=registry)
        self.forward_latency = Histogram("agogosml_app_forward_latency_seconds",
                                         "From posting a scored batch to the writer's ack",
                                         buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_size = Histogram("agogosml_app_batch_size", "Records per scored batch",
                                    ["endpoint"], buckets=BATCH_SIZE_BUCKETS, registry=registry)
        self.predictions = Counter("agogosml_app_predictions", "Predictions by value",
                                   ["model", "version", "prediction"], registry=registry)
        self.model_info = Gauge("agogosml_app_model_info", "The model being served (value 1)",
                                ["model", "version"], registry=registry)
        self.shadow_compared = Counter("agogosml_app_shadow_compared",
                                       "Shadow events compared with the production prediction",
                                       registry=registry)
        self.shadow_agreed = Counter("agogosml_app_shadow_agreed",
                                     "Shadow events whose prediction equals production's",
                                     registry=registry)
        self._prediction_labels: set[str] = set()

    def count_predictions(self, model: ModelRef, predictions: list[Any]) -> None:
        counts: dict[str, int] = {}
        for value in predictions:
            label = str(value)
            if label not in self._prediction_labels:
                if len(self._prediction_labels) >= MAX_PREDICTION_LABELS:
                    label = "other"
                else:
                    self._prediction_labels.add(label)
            counts[label] = counts.get(label, 0) + 1
        for label, count in counts.items():
            self.predictions.labels(model=model.name, version=model.version,
                                    prediction=label).inc(count)
