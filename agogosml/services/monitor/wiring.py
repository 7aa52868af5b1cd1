"""From settings to the running monitor: the store, the state, the two ingestors and the
routers, handed to `create_app`."""

from __future__ import annotations

from contextlib import ExitStack

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.errors import ConfigurationError
from agogosml.modelloop.tracking import Tracking
from agogosml.monitor.drift import DetectorConfig
from agogosml.monitor.ingest import Ingestor
from agogosml.monitor.labels import LabelIngestor
from agogosml.monitor.references import ProfileLoader, ReferenceProfiles, mlflow_profile_loader
from agogosml.monitor.scrape import MetricsScraper
from agogosml.monitor.state import MonitorState, Windows
from agogosml.monitor.store.base import AsyncEventStore, EventStore, Retention
from agogosml.monitor.triggers import RulesError, Triggers, TriggerSecrets, load_rules
from agogosml.retry import Backoff
from agogosml.services.monitor.service import GdprApi, create_app
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.stores import open_store
from agogosml.settings import load_settings
from agogosml.streaming.factory import build_source


def trigger_secrets(settings: MonitorSettings) -> TriggerSecrets:
    return TriggerSecrets(
        retrain_token=settings.retrain_token, webhook_token=settings.webhook_token,
        retrain_url=None if settings.retrain_url is None else str(settings.retrain_url))


def build_triggers(settings: MonitorSettings, store: AsyncEventStore,
                   registry: CollectorRegistry) -> Triggers | None:
    """The rules file's triggers (RulesError, a ConfigurationError, names what is wrong);
    None without one. A rollback rule moves the champion alias in the monitor's MLflow."""
    if settings.rules_path is None:
        return None
    tracking = Tracking(tracking_uri=settings.tracking_uri, model_name=settings.model_name)
    try:
        return Triggers(load_rules(settings.rules_path), store, registry,
                        trigger_secrets(settings), tracking=tracking)
    except RulesError as error:
        raise ConfigurationError(str(error)) from None


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
        DetectorConfig(arl0=settings.drift_arl0), max_versions=settings.max_versions,
        positive=settings.positive_class)
    backoff = Backoff()
    events = Ingestor(build_source(settings.source, settings, settings.output_stream,
                                   settings.consumer_group), store, backoff,
                      on_stored=state.on_stored)
    events.counts = state.events_counts
    labels = LabelIngestor(build_source(settings.source, settings, settings.labels_stream,
                                        settings.consumer_group), store, backoff)
    labels.counts = state.labels_counts
    registry = registry or CollectorRegistry()
    return create_app(state, events, labels, registry, settings.api_credentials(),
                      triggers=build_triggers(settings, store, registry),
                      tick_s=settings.tick_s, compact_every_s=settings.compact_every_s,
                      gdpr=build_gdpr(store.store) if settings.gdpr_enabled else None)


def build_gdpr(events: EventStore) -> GdprApi:
    """The forget worker over the privacy store of AGOGOSML_GDPR_*, purging `events`."""
    from agogosml.privacy.forget.router import ForgetWorker
    from agogosml.privacy.forget.wiring import build_forgetter
    from agogosml.privacy.settings import GdprSettings

    stack = ExitStack()
    forgetter = stack.enter_context(build_forgetter(load_settings(GdprSettings), events))
    return GdprApi(ForgetWorker(forgetter), stack.close)
