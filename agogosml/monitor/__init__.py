"""Monitoring (issue 10): for now the event store that keeps the history of scored events,
late labels and trigger firings (`agogosml.monitor.store`)."""
