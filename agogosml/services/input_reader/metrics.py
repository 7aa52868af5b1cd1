"""The input reader's Prometheus metrics, registered on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agogosml.buckets import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS


class ReaderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter("agogosml_reader_records_consumed", "Records read from the source",
                                registry=registry)
        self.forwarded = Counter("agogosml_reader_events_forwarded",
                                 "Events acknowledged by the app", registry=registry)
        self.dead_lettered = Counter("agogosml_reader_records_dead_lettered",
                                     "Records sent to the dead-letter destination",
                                     ["reason"], registry=registry)
        self.forward_failures = Counter("agogosml_reader_forward_failures",
                                        "Failed attempts to forward a batch (each is retried)",
                                        registry=registry)
        self.batch_size = Histogram("agogosml_reader_batch_size", "Records per forwarded batch",
                                    buckets=BATCH_SIZE_BUCKETS, registry=registry)
        self.forward_latency = Histogram("agogosml_reader_forward_latency_seconds",
                                         "From forwarding a batch to the app's acknowledgement",
                                         buckets=LATENCY_BUCKETS, registry=registry)
        self.commits = Counter("agogosml_reader_commits", "Offset commits", registry=registry)
        self.commit_failures = Counter("agogosml_reader_commit_failures",
                                       "Offset commits that failed (retried with the next one)",
                                       registry=registry)
        self.in_flight = Gauge("agogosml_reader_batches_in_flight",
                               "Batches forwarded and not yet acknowledged", registry=registry)
        self.paused = Gauge("agogosml_reader_paused",
                            "1 while consumption is paused for backpressure", registry=registry)
        self.lag = Gauge("agogosml_reader_consumer_lag", "Records not yet consumed",
                         ["stream", "partition"], registry=registry)
        self.batches_split = Counter("agogosml_reader_batches_split",
                                     "Batches split in halves to isolate records the app "
                                     "fails on", registry=registry)
        self.stalled = Gauge("agogosml_reader_stalled",
                             "1 while records wait and nothing was committed for longer than "
                             "the readiness limit", registry=registry)
        self.since_progress = Gauge("agogosml_reader_seconds_since_progress",
                                    "Seconds records have waited without a commit (0 while "
                                    "idle)", registry=registry)
        self.shadow_mirrored = Counter("agogosml_reader_shadow_mirrored",
                                       "Events mirrored to the preview app", registry=registry)
        self.shadow_skipped = Counter("agogosml_reader_shadow_skipped",
                                      "Sampled events not mirrored because the preview app lagged",
                                      registry=registry)
        self.shadow_failures = Counter("agogosml_reader_shadow_failures",
                                       "Mirrored batches the preview app did not acknowledge",
                                       registry=registry)
