"""agogosml: run classical ML models on event streams, at least once."""

__version__ = "0.1.0"
