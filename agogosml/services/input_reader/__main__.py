"""Entry point: `python -m agogosml.services.input_reader` (or `agogosml serve input_reader`)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import DeadLetterWriter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.pipeline import BatchPolicy, InputReader
from agogosml.services.input_reader.privacy import privacy_from_settings
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.service import create_app
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.input_reader.shadow import ShadowMirror
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.serving import run_service
from agogosml.settings import load_settings
from agogosml.streaming.factory import build_sink, build_source
from agogosml.web.client import BatchClient


def build() -> tuple[FastAPI, ReaderSettings]:
    settings = load_settings(ReaderSettings)
    registry = CollectorRegistry()
    metrics = ReaderMetrics(registry)
    shadow = None
    if settings.shadow_url is not None and settings.shadow_sample_ratio > 0:
        shadow = ShadowMirror(BatchClient(f"{settings.shadow_url}/v1/batches",
                                          settings.request_timeout_s,
                                          token=settings.pipeline_token),
                              settings.shadow_sample_ratio, metrics)
    backoff = Backoff(settings.retry_initial_ms / 1000, settings.retry_max_ms / 1000)
    privacy = privacy_from_settings(settings)
    reader = InputReader(
        source=build_source(settings.source, settings, settings.input_stream,
                            settings.consumer_group),
        app_client=BatchClient(f"{settings.app_url}/v1/batches", settings.request_timeout_s,
                        token=settings.pipeline_token),
        dead_letters=DeadLetterWriter(
            build_sink(settings.source, settings, settings.deadletter_stream), backoff,
            settings.deadletter_max_original_bytes,
            sealer=None if privacy is None else privacy.sealer),
        validator=RecordValidator(settings.load_schema(), settings.max_record_bytes,
                                  settings.id_field, settings.subject_field, settings.time_field),
        metrics=metrics,
        policy=BatchPolicy(settings.batch_max_size, settings.batch_linger_ms / 1000,
                           settings.max_in_flight, settings.drain_timeout_s,
                           settings.failure_budget),
        backoff=backoff,
        progress=ProgressWatch(settings.stall_ready_s, settings.stall_live_s),
        transforms=() if privacy is None else (privacy.stage,),
        subject_of=(lambda value: None) if privacy is None else privacy.stage.subject_of_record,
        shadow=shadow,
    )
    return create_app(reader, registry, f"{settings.app_url}/healthz"), settings


def main() -> None:
    run_service(build, "input_reader")


if __name__ == "__main__":
    main()
