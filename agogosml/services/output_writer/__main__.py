"""Entry point: `python -m agogosml.services.output_writer` (or `agogosml serve output_writer`)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.services.output_writer.service import create_app
from agogosml.services.output_writer.settings import WriterSettings
from agogosml.serving import run_service
from agogosml.settings import load_settings
from agogosml.streaming.factory import build_sink


def build() -> tuple[FastAPI, WriterSettings]:
    settings = load_settings(WriterSettings)
    sink = build_sink(settings.sink, settings, settings.output_stream)
    return create_app(sink, CollectorRegistry(), settings.pipeline_credentials(),
                      max_body_bytes=settings.max_body_bytes,
                      max_batch_events=settings.max_batch_events), settings


def main() -> None:
    run_service(build, "output_writer")


if __name__ == "__main__":
    main()
