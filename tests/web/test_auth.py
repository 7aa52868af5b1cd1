"""Who may write to the pipeline, over real HTTP against the real services: the writer and
the app's pipeline hop take only the pipeline token (primary or secondary), /predict and
OIP take only an API key when one is set, and refusals are counted, never logged with the
token, and never read the body."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agogosml.demo.data import FEATURES, events
from agogosml.envelope import SHADOW_HEADER
from agogosml.errors import ConfigurationError
from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.services.app.settings import AppSettings
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.services.output_writer.settings import WriterSettings
from agogosml.settings import load_settings
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.auth import Credentials, bearer_header
from agogosml.web.client import BatchClient
from tests.conftest import Registry
from tests.servers import PIPELINE_TOKEN, run_server

NEXT_TOKEN = SecretStr("the-next-pipeline-token-0123456789")
API_KEY = SecretStr("an-api-key-for-people-0123456789")
ROTATING = Credentials(PIPELINE_TOKEN, NEXT_TOKEN)
RECORDS = [{name: item[name] for name in FEATURES} for item in events(2, seed=9)]
SCORED = {"id": "forged", "time": 1_700_000_000_000, "subject": None,
          "model": {"name": "demo", "version": "1"}, "prediction": 1,
          "scores": {"0": 0.0, "1": 1.0}, "scored_at": 1_700_000_000_100}


@dataclass
class Stack:
    app: str
    writer: str
    shadow_writer: str
    scored: Path
    shadow: Path


@pytest.fixture(scope="module")
def stack(mlflow_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """App (with an API key) → writer and shadow writer, all accepting two pipeline tokens."""
    folder = tmp_path_factory.mktemp("auth")
    writer = create_writer(JsonLinesSink(folder / "scored.jsonl"), CollectorRegistry(), ROTATING)
    shadow = create_writer(JsonLinesSink(folder / "shadow.jsonl"), CollectorRegistry(), ROTATING)
    with run_server(writer) as writer_url, run_server(shadow) as shadow_url:
        app = create_app(
            ModelHolder(load_model(mlflow_registry.model_uri)),
            BatchClient(f"{writer_url}/v1/batches", 10.0, token=PIPELINE_TOKEN),
            CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
            pipeline=ROTATING, api_keys=Credentials(API_KEY),
            shadow_writer=BatchClient(f"{shadow_url}/v1/batches", 10.0, token=PIPELINE_TOKEN))
        with run_server(app) as app_url:
            yield Stack(app_url, writer_url, shadow_url, folder / "scored.jsonl",
                        folder / "shadow.jsonl")


def post(url: str, body: Any, token: SecretStr | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, content=orjson.dumps(body), timeout=10,
                      headers={"content-type": "application/json", **bearer_header(token),
                               **(headers or {})})


def refused(url: str, endpoint: str, reason: str) -> float:
    prefix = f'agogosml_auth_refused_total{{endpoint="{endpoint}",reason="{reason}"}} '
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] \
        if path.exists() else []


def test_the_writer_refuses_a_forged_scored_event(stack: Stack) -> None:
    before = refused(stack.writer, "/v1/batches", "missing")
    anonymous = post(f"{stack.writer}/v1/batches", {"events": [SCORED]})
    wrong = post(f"{stack.writer}/v1/batches", {"events": [SCORED]},
                 SecretStr("not-the-pipeline-token-0123456789"))
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="pipeline"'
    assert anonymous.json()["type"] == "UnauthorizedError"
    assert refused(stack.writer, "/v1/batches", "missing") == before + 1
    assert refused(stack.writer, "/v1/batches", "wrong") >= 1
    assert all(event["id"] != "forged" for event in lines(stack.scored))


def test_both_tokens_are_accepted_while_rotating(stack: Stack) -> None:
    for token, event_id in ((PIPELINE_TOKEN, "by-primary"), (NEXT_TOKEN, "by-secondary")):
        response = post(f"{stack.writer}/v1/batches", {"events": [dict(SCORED, id=event_id)]},
                        token)
        assert response.status_code == 200, response.text
    written = {event["id"] for event in lines(stack.scored)}
    assert {"by-primary", "by-secondary"} <= written


def test_an_unauthenticated_body_is_never_read(stack: Stack) -> None:
    """401, not 400: the token is checked before a byte of the body is parsed."""
    for url in (stack.writer, stack.app):
        response = httpx.post(f"{url}/v1/batches", content=b"{not json", timeout=30)
        assert response.status_code == 401


def test_the_pipeline_hop_scores_only_for_the_reader(stack: Stack) -> None:
    batch = {"events": [{"id": f"hop-{i}", "time": 1, "payload": r}
                        for i, r in enumerate(RECORDS)]}
    assert post(f"{stack.app}/v1/batches", batch).status_code == 401
    assert post(f"{stack.app}/v1/batches", batch, API_KEY).status_code == 401, \
        "an API key is for people, not for the pipeline hop"
    answer = post(f"{stack.app}/v1/batches", batch, NEXT_TOKEN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["scored"] == len(RECORDS)
    assert {"hop-0", "hop-1"} <= {event["id"] for event in lines(stack.scored)}


def test_shadow_agreement_cannot_be_moved_without_the_token(stack: Stack) -> None:
    batch = {"events": [{"id": "shadowed", "time": 1, "payload": RECORDS[0]}],
             "reference": {"shadowed": "made-up"}}
    forged = post(f"{stack.app}/v1/batches", batch, headers={SHADOW_HEADER: "1"})
    assert forged.status_code == 401
    assert "agogosml_app_shadow_compared_total 0.0" in httpx.get(f"{stack.app}/metrics").text
    assert lines(stack.shadow) == []


@pytest.mark.parametrize("path", ["/predict", "/v2/models/demo/infer"])
def test_people_and_inference_clients_need_the_api_key(stack: Stack, path: str) -> None:
    body: Any = RECORDS if path == "/predict" else {"inputs": [
        {"name": name, "shape": [1], "datatype": "BYTES" if isinstance(value, str) else
         ("BOOL" if isinstance(value, bool) else
          ("INT64" if isinstance(value, int) else "FP64")), "data": [value]}
        for name, value in RECORDS[0].items()]}
    assert post(f"{stack.app}{path}", body).status_code == 401
    assert post(f"{stack.app}{path}", body, PIPELINE_TOKEN).status_code == 401
    answer = post(f"{stack.app}{path}", body, API_KEY)
    assert answer.status_code == 200, answer.text
    assert refused(stack.app, path.replace("demo", "{name}"), "missing") >= 1


def test_probes_metrics_and_server_health_stay_open(stack: Stack) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"):
        assert httpx.get(f"{stack.app}{path}", timeout=10).status_code == 200, path
    assert httpx.get(f"{stack.app}/v2/models/demo", timeout=10).status_code == 401


def test_refusals_never_log_a_token(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    presented = "a-token-someone-guessed-0123456789"
    with caplog.at_level(logging.DEBUG):
        post(f"{stack.app}/v1/batches", {"events": []}, SecretStr(presented))
        post(f"{stack.writer}/v1/batches", {"events": []}, SecretStr(presented))
    text = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for secret in (presented, PIPELINE_TOKEN.get_secret_value(),
                   NEXT_TOKEN.get_secret_value(), API_KEY.get_secret_value()):
        assert secret not in text
    for url in (stack.app, stack.writer):
        assert PIPELINE_TOKEN.get_secret_value() not in httpx.get(f"{url}/metrics").text


PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
HEADER_VALUES = (PRINTABLE | PRINTABLE.map(lambda text: f"Bearer {text}")
                 | st.sampled_from(["bearer", "Basic"]).map(
                     lambda scheme: f"{scheme} {PIPELINE_TOKEN.get_secret_value()}")
                 ).map(str.strip)  # HTTP trims a header value's ends


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=HEADER_VALUES)
def test_no_authorization_header_but_the_tokens_opens_the_writer(
        stack: Stack, authorization: str) -> None:
    accepted = {f"Bearer {PIPELINE_TOKEN.get_secret_value()}",
                f"Bearer {NEXT_TOKEN.get_secret_value()}"}
    response = httpx.post(f"{stack.writer}/v1/batches", content=b'{"events": []}', timeout=10,
                          headers={"authorization": authorization})
    scheme, _, token = authorization.partition(" ")
    opens = scheme.lower() == "bearer" and f"Bearer {token}" in accepted
    assert response.status_code == (200 if opens else 401), authorization


@pytest.mark.parametrize("settings_class", [ReaderSettings, AppSettings, WriterSettings])
def test_a_service_without_a_pipeline_token_refuses_to_start(
        settings_class: type[ReaderSettings | AppSettings | WriterSettings],
        monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = str(settings_class.model_config.get("env_prefix"))
    monkeypatch.delenv(f"{prefix}PIPELINE_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=f"{prefix}PIPELINE_TOKEN: Field required"):
        load_settings(settings_class)
    monkeypatch.setenv(f"{prefix}PIPELINE_TOKEN", "short")
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        load_settings(settings_class)
    monkeypatch.setenv(f"{prefix}PIPELINE_TOKEN", "has a space in it, sixteen+")
    with pytest.raises(ConfigurationError, match="printable ASCII"):
        load_settings(settings_class)


def test_an_empty_secondary_token_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes gives an optional Secret key that is present but empty as ''."""
    monkeypatch.setenv("AGOGOSML_WRITER_PIPELINE_TOKEN", PIPELINE_TOKEN.get_secret_value())
    monkeypatch.setenv("AGOGOSML_WRITER_PIPELINE_TOKEN_SECONDARY", "")
    assert load_settings(WriterSettings).pipeline_token_secondary is None
    monkeypatch.setenv("AGOGOSML_APP_PIPELINE_TOKEN", PIPELINE_TOKEN.get_secret_value())
    monkeypatch.setenv("AGOGOSML_APP_API_KEY", "")
    assert load_settings(AppSettings).api_credentials() is None
