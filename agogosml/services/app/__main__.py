"""Entry point: `python -m agogosml.services.app` (or `agogosml serve app`)."""

from __future__ import annotations

# isort: off
import agogosml.services.app.skops_first  # noqa: F401  before MLflow: see its docstring
# isort: on
import mlflow
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.services.app.settings import AppSettings
from agogosml.serving import run_service
from agogosml.settings import load_settings
from agogosml.web.client import BatchClient


def build() -> tuple[FastAPI, AppSettings]:
    settings = load_settings(AppSettings)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    app = create_app(
        ModelHolder(load_model(settings.model_uri)),
        BatchClient(f"{settings.writer_url}/v1/batches", settings.writer_timeout_s,
                    token=settings.pipeline_token),
        CollectorRegistry(),
        writer_health_url=f"{settings.writer_url}/healthz",
        pipeline=settings.pipeline_credentials(),
        api_keys=settings.api_credentials(),
        max_predict_records=settings.max_predict_records,
        model_uri=settings.model_uri,
        reload_interval_s=settings.reload_interval_s,
        max_body_bytes=settings.max_body_bytes,
        max_batch_events=settings.max_batch_events,
        shadow_writer=None if settings.shadow_writer_url is None else BatchClient(
            f"{settings.shadow_writer_url}/v1/batches", settings.writer_timeout_s,
            token=settings.pipeline_token),
    )
    return app, settings


def main() -> None:
    run_service(build, "app")


if __name__ == "__main__":
    main()
