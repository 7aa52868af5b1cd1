"""Settings come from the environment and a bad value stops the service with its name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agogosml.errors import ConfigurationError
from agogosml.localstack.tokens import pipeline_token_env
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.output_writer.settings import WriterSettings
from agogosml.settings import load_json_schema, load_settings
from tests.servers import PIPELINE_TOKEN


@pytest.fixture(autouse=True)
def pipeline_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service needs one (tests/services/test_auth.py shows it refuses to start without)."""
    for variable, value in pipeline_token_env(PIPELINE_TOKEN.get_secret_value()).items():
        monkeypatch.setenv(variable, value)


CONNECTION = ("Endpoint=sb://agogo.servicebus.windows.net/;SharedAccessKeyName=send;"
              "SharedAccessKey=c2VjcmV0;EntityPath=input")


def test_defaults_match_the_documented_local_stack() -> None:
    reader = load_settings(ReaderSettings)
    assert (reader.port, reader.input_stream, reader.deadletter_stream) == (
        8002, "agogosml.input", "agogosml.deadletter")
    assert reader.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert load_settings(WriterSettings).output_stream == "agogosml.output"


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("AGOGOSML_READER_PORT", "eighty", "AGOGOSML_READER_PORT: Input should be a valid integer"),
    ("AGOGOSML_READER_SOURCE", "rabbitmq", "AGOGOSML_READER_SOURCE: Input should be 'file'"),
    ("AGOGOSML_READER_BATCH_MAX_SIZE", "0", "AGOGOSML_READER_BATCH_MAX_SIZE"),
    ("AGOGOSML_READER_SCHEMA_PATH", "/nowhere.json", "is not a file"),
    ("AGOGOSML_READER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", "kafka_sasl_mechanism is required"),
])
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                        value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match="invalid settings") as refused:
        load_settings(ReaderSettings)
    assert message in str(refused.value)


def test_event_hubs_kafka_endpoint_from_a_connection_string(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGOGOSML_WRITER_KAFKA_EVENTHUBS_CONNECTION_STRING", CONNECTION)
    options = load_settings(WriterSettings).kafka_client_options()
    assert options["bootstrap_servers"] == "agogo.servicebus.windows.net:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "PLAIN"
    assert options["sasl_plain_username"] == "$ConnectionString"
    assert options["sasl_plain_password"] == CONNECTION


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGOGOSML_WRITER_KAFKA_EVENTHUBS_CONNECTION_STRING", CONNECTION)
    shown = repr(load_settings(WriterSettings))
    assert "c2VjcmV0" not in shown
    assert PIPELINE_TOKEN.get_secret_value() not in shown


@pytest.mark.parametrize(("module", "variable", "value", "message"), [
    ("agogosml.services.input_reader", "AGOGOSML_READER_PORT", "eighty",
     "AGOGOSML_READER_PORT"),
    ("agogosml.services.output_writer", "AGOGOSML_WRITER_SINK", "s3", "AGOGOSML_WRITER_SINK"),
    ("agogosml.services.app", "AGOGOSML_APP_MODEL_URI", "/no/such/model",
     "cannot load model /no/such/model"),
])
def test_a_service_with_a_bad_setting_exits_at_start(module: str, variable: str, value: str,
                                                     message: str) -> None:
    tokens = pipeline_token_env(PIPELINE_TOKEN.get_secret_value())
    finished = subprocess.run([sys.executable, "-m", module], env={
        variable: value, "PATH": "/usr/bin:/bin", **tokens}, capture_output=True, timeout=120)
    assert finished.returncode == 2
    assert message in finished.stderr.decode()


@pytest.mark.parametrize(("content", "problem"), [
    (b"{not json", "is not JSON"),
    (b"[1, 2]", "does not hold a JSON Schema object"),
])
def test_a_schema_file_the_contract_cannot_use_is_refused_with_its_path(
        tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "schema.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=problem) as refused:
        load_json_schema(path)
    assert str(path) in str(refused.value)
