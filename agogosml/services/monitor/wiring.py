"""From settings to the running monitor: the store, the state, the two ingestors and the
routers, handed to `create_app`."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.monitor.drift import DetectorConfig
from agogosml.monitor.ingest import Ingestor
from agogosml.monitor.labels import LabelIngestor
from agogosml.monitor.references import ProfileLoader, ReferenceProfiles, mlflow_profile_loader
from agogosml.monitor.scrape import MetricsScraper
from agogosml.monitor.state import MonitorState, Windows
from agogosml.monitor.store.base import AsyncEventStore, Retention
from agogosml.retry import Backoff
from agogosml.services.monitor.service import create_app
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.stores import open_store
from agogosml.streaming.factory import build_source


def build_app(settings: MonitorSettings, registry: CollectorRegistry | None = None,
              load_profile: ProfileLoader | None = None) -> FastAPI:
    retention = Retention(raw_ms=settings.retention_raw_s * 1000,
                          window_ms=settings.rollup_window_s * 1000)
    store = AsyncEventStore(open_store(settings.store_url.get_secret_value(), retention))
    state = MonitorState(
        store,
        ReferenceProfiles(load_profile or mlflow_profile_loader(settings.tracking_uri)),
        MetricsScraper({name: str(url) for name, url in settings.scrape_urls.items()}),
        Windows(drift_events=settings.drift_window_events,
                performance_s=settings.performance_window_s),
        DetectorConfig(arl0=settings.drift_arl0), max_versions=settings.max_versions)
    backoff = Backoff()
    events = Ingestor(build_source(settings.source, settings, settings.output_stream,
                                   settings.consumer_group), store, backoff,
                      on_stored=state.on_stored)
    events.counts = state.events_counts
    labels = LabelIngestor(build_source(settings.source, settings, settings.labels_stream,
                                        settings.consumer_group), store, backoff)
    labels.counts = state.labels_counts
    return create_app(state, events, labels, registry or CollectorRegistry(),
                      settings.api_credentials(), tick_s=settings.tick_s,
                      compact_every_s=settings.compact_every_s)
