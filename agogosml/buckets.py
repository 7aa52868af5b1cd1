"""Histogram buckets every service uses, so their latencies and batch sizes compare."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10)
"""Seconds: from a sub-millisecond model call to a slow broker acknowledgement."""

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
"""Records per batch: the reader's batch size ranges from 1 to 10,000."""
