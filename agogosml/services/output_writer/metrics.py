"""The output writer's Prometheus metrics, registered on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from agogosml.buckets import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS


class WriterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter("agogosml_writer_events_written",
                               "Events the sink confirmed", registry=registry)
        self.failed = Counter("agogosml_writer_events_failed",
                              "Events in batches the sink did not confirm (the chain retries)",
                              registry=registry)
        self.sink_latency = Histogram("agogosml_writer_sink_latency_seconds",
                                      "From handing a batch to the sink to its confirmation",
                                      buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_size = Histogram("agogosml_writer_batch_size", "Events per batch",
                                    buckets=BATCH_SIZE_BUCKETS, registry=registry)
