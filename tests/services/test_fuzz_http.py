"""Property-based HTTP fuzzing of every service on real servers: the app with the real
MLflow demo model and a real writer, the writer on the file sink, the reader on a file
source, the monitor on file streams with a real SQLite store and trigger rules.
Schemathesis generates requests from each service's OpenAPI document (bodies that fit it
and bodies that do not); hypothesis throws arbitrary JSON at every POST.
Nothing may answer 5xx, and every service must still be alive and ready afterwards."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from agogosml.envelope import ScoredEvent
from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import DeadLetterWriter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.pipeline import BatchPolicy, InputReader
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.service import create_app as create_reader
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.wiring import build_app as build_monitor
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource
from agogosml.web.client import BatchClient
from tests.conftest import Registry
from tests.servers import PIPELINE_AUTH, PIPELINE_TOKEN, run_server
from tests.services.app.harness import app_behind_writer

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
"""Bounded and reproducible: the same examples on every run, nothing kept between runs,
no shrinking (a failure reports the request that failed, as curl)."""


@dataclass(frozen=True)
class Services:
    app: str
    writer: str
    reader: str
    monitor: str
    output: Path

    def named(self, name: str) -> str:
        url: str = getattr(self, name)
        return url


@pytest.fixture(scope="module")
def services(mlflow_registry: Registry,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("fuzz")
    with app_behind_writer(mlflow_registry.model_uri, folder) as (app_url, writer_url):
        registry = CollectorRegistry()
        backoff = Backoff(initial_s=0.01, max_s=0.05)
        reader = InputReader(
            source=JsonLinesSource(folder / "in.jsonl"),
            app_client=BatchClient(f"{app_url}/v1/batches", 5.0, token=PIPELINE_TOKEN),
            dead_letters=DeadLetterWriter(JsonLinesSink(folder / "dead.jsonl"), backoff),
            validator=RecordValidator(None, 10_000, "id", None, None),
            metrics=ReaderMetrics(registry),
            policy=BatchPolicy(max_size=10, linger_s=0.0, max_in_flight=2,
                               drain_timeout_s=2),
            backoff=backoff,
            progress=ProgressWatch(60, 300),
        )
        with run_server(create_reader(reader, registry, f"{app_url}/healthz")) as reader_url, \
                run_server(monitor_app(folder, mlflow_registry)) as monitor_url:
            yield Services(app_url, writer_url, reader_url, monitor_url,
                           folder / "scored.jsonl")


MONITOR_RULES = """
rules:
  - {name: fraud-share, metric: 'prediction_share{prediction="1"}', comparison: ">",
     threshold: 0.5, window: 60, cool_down: 60, action: {type: notify}}
alerts:
  - {name: app-errors, alertname: AgogosmlAppErrorRate, cool_down: 60, action: {type: notify}}
"""


def monitor_app(folder: Path, registry: Registry) -> FastAPI:
    rules = folder / "rules.yaml"
    rules.write_text(MONITOR_RULES)
    for stream in ("agogosml.output", "agogosml.labels"):
        (folder / f"{stream}.jsonl").touch()
    # The GDPR endpoints too, over a privacy store of their own (no model to retrain).
    os.environ["AGOGOSML_GDPR_STORE_URL"] = f"sqlite:///{folder / 'privacy.db'}"
    try:
        return build_monitor(MonitorSettings(
            source="file", files_dir=folder, tracking_uri=registry.tracking_uri,
            store_url=SecretStr(f"sqlite:///{folder / 'monitor.db'}"), api_token=PIPELINE_TOKEN,
            rules_path=rules, tick_s=0.5, gdpr_enabled=True))
    finally:
        del os.environ["AGOGOSML_GDPR_STORE_URL"]


def assert_healthy(url: str) -> None:
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    readiness = httpx.get(f"{url}/readyz", timeout=10)
    assert readiness.status_code == 200, readiness.text


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


@pytest.mark.parametrize("service", ["app", "writer", "reader", "monitor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_the_openapi_document_allows_or_forbids_is_a_server_error(
        services: Services, service: str, mode: GenerationMode) -> None:
    url = services.named(service)
    checked = []
    for operation in operations(url):
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # no body to break; a string path parameter cannot be made invalid
        fuzz_operation(url, operation, mode)
        if "{name}" in operation.path:  # also the model this app serves, past the 404
            fuzz_operation(url, operation, mode, path_parameters={"name": "demo"})
        checked.append(operation.label)
    if mode is GenerationMode.POSITIVE:
        assert "GET /healthz" in checked, checked
    if service in ("app", "writer"):
        assert any(label.startswith("POST ") for label in checked), checked
    assert_healthy(url)


def fuzz_operation(url: str, operation: Any, mode: GenerationMode,
                   path_parameters: dict[str, str] | None = None) -> None:
    checks: list[Any] = [not_a_server_error]
    if mode is GenerationMode.POSITIVE and operation.method.upper() == "POST":
        checks.append(response_schema_conformance)

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def fuzz(case: Any) -> None:
        # Authenticated, so that fuzzing reaches past the token check (tested on its own).
        response = case.call(base_url=url, headers=PIPELINE_AUTH, timeout=30)
        case.validate_response(response, checks=checks)

    fuzz()


JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
               | st.floats(allow_nan=True, allow_infinity=True))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=10), children, max_size=5),
                           max_leaves=30)
BATCHES = st.builds(lambda events: {"events": events}, st.lists(
    st.fixed_dictionaries({"id": JSON_VALUES, "time": JSON_VALUES, "payload": JSON_VALUES}),
    max_size=5))
BODIES = JSON_VALUES | BATCHES


def nested(opening: bytes, closing: bytes, depth: int) -> bytes:
    return opening * depth + b"1" + closing * depth


HOSTILE_BODIES = [
    nested(b"[", b"]", 1_000),
    nested(b'{"a":', b"}", 1_000),
    nested(b"[", b"]", 5_000),
    b'{"events": [' + nested(b"[", b"]", 300) + b"]}",
    b'{"events": [{"id": "x", "time": 1, "payload": ' + nested(b'{"a":', b"}", 1_000) + b"}]}",
    b'{"amount": ' + nested(b"[", b"]", 1_000) + b"}",
    b'{"amount": 1' + b"0" * 400 + b"}",
    b'{"events": [{"id": "x", "time": 1' + b"0" * 30 + b', "payload": {}}]}',
    b'{"amount": NaN, "hour": Infinity}',
    b'{"id": "\\ud800"}',
    b"",
    b"\xff\xfe",
]

POSTS = [("app", "/predict"), ("app", "/v1/batches"), ("app", "/v2/models/demo/infer"),
         ("app", "/v2/models/demo/versions/1/infer"), ("app", "/invocations"),
         ("writer", "/v1/batches"), ("monitor", "/v1/labels"), ("monitor", "/v1/alerts"),
         ("monitor", "/v1/gdpr/forget")]


@pytest.mark.parametrize(("service", "path"), POSTS)
def test_arbitrary_json_is_never_a_server_error(services: Services, service: str,
                                                path: str) -> None:
    url = services.named(service)
    with httpx.Client(base_url=url, timeout=30,
                      headers={"content-type": "application/json"}) as client:

        def status_of(content: bytes) -> int:
            return client.post(path, headers=PIPELINE_AUTH, content=content).status_code

        for body in HOSTILE_BODIES:
            assert status_of(body) < 500, body[:200]
        fuzz_json(status_of)
    assert_healthy(url)


def fuzz_json(status_of: Callable[[bytes], int]) -> None:
    @FUZZ
    @given(body=BODIES)
    def fuzz(body: Any) -> None:
        content = json.dumps(body, allow_nan=True).encode()
        assert status_of(content) < 500, content[:500]

    fuzz()


def test_the_sink_holds_only_valid_scored_events(services: Services) -> None:
    """Whatever was sent, what reached the sink has the documented shape."""
    lines = services.output.read_bytes().splitlines() if services.output.exists() else []
    for line in lines:
        ScoredEvent.from_json(orjson.loads(line))


PATH_PARTS = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                   exclude_characters="/?#%"), min_size=1, max_size=12)
PATHS = st.lists(PATH_PARTS, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
MLFLOW_PATHS = ("/invocations", "/ping", "/health", "/version")


@pytest.mark.parametrize("service", ["app", "writer", "reader", "monitor"])
def test_every_refusal_of_every_path_and_method_is_an_error_body(services: Services,
                                                                  service: str) -> None:
    """No route, a method the route does not take: still the service's error shape (the
    app's MLflow routes: MLflow's), which is what OIP and MLflow clients decode."""
    url = services.named(service)
    with httpx.Client(base_url=url, timeout=30, headers=PIPELINE_AUTH) as client:
        wrong_method = client.delete("/healthz")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "GET"
        assert wrong_method.json() == {"error": "DELETE is not allowed on /healthz; it takes GET",
                                       "type": "MethodNotAllowedError"}

        @FUZZ
        @given(path=PATHS, method=st.sampled_from(["GET", "POST", "PUT", "PATCH"]))
        def fuzz(path: str, method: str) -> None:
            response = client.request(method, path, content=b"{}")
            assert response.status_code < 500, (method, path, response.text)
            if response.status_code >= 400:
                body = response.json()
                if service == "app" and any(path == mlflow or path.startswith(f"{mlflow}/")
                                            for mlflow in MLFLOW_PATHS):
                    assert set(body) == {"error_code", "message"}, (method, path, body)
                else:
                    assert set(body) >= {"error", "type"}, (method, path, body)
                    assert body["error"], (method, path, body)

        fuzz()
    assert_healthy(url)
