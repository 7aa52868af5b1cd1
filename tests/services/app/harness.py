"""The app as the protocol tests run it: on a model, in front of a real output writer on
the file sink, with the pipeline token and no API keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE, PIPELINE_TOKEN, run_server


def app_for(model_uri: str, writer_url: str) -> FastAPI:
    """The app on `model_uri`, handing its batches to the writer at `writer_url` (which
    may be a port nothing listens on)."""
    return create_app(ModelHolder(load_model(model_uri)),
                      BatchClient(f"{writer_url}/v1/batches", 10.0, token=PIPELINE_TOKEN),
                      CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
                      pipeline=PIPELINE)


@contextmanager
def app_behind_writer(model_uri: str, folder: Path) -> Iterator[tuple[str, str]]:
    """The app's and the writer's URLs; the writer writes to `folder`/scored.jsonl."""
    writer = create_writer(JsonLinesSink(folder / "scored.jsonl"), CollectorRegistry(), PIPELINE)
    with run_server(writer) as writer_url, \
            run_server(app_for(model_uri, writer_url)) as app_url:
        yield app_url, writer_url
