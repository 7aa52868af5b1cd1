"""Streaming engines other than the three services: they run the same contract, model and
output format on another runtime (agogosml.engines.spark: Spark Structured Streaming)."""
