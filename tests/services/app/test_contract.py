"""The app's HTTP contracts, over real HTTP: /predict in every body shape, the pipeline
endpoint through a real writer, and the Open Inference Protocol v2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from agogosml.demo.data import FEATURES, events
from agogosml.envelope import ECHO_HEADER, SHADOW_HEADER
from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.client import BatchClient
from tests.conftest import Registry
from tests.servers import PIPELINE, PIPELINE_AUTH, PIPELINE_TOKEN, run_server

RECORDS = [{name: item[name] for name in FEATURES} for item in events(3, seed=5)]
COLUMNS = list(FEATURES)


@pytest.fixture(scope="module")
def stack(mlflow_registry: Registry,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app between a production writer and a shadow writer, each writing a file."""
    folder = tmp_path_factory.mktemp("writers")
    writer = create_writer(JsonLinesSink(folder / "scored.jsonl"), CollectorRegistry(), PIPELINE)
    shadow = create_writer(JsonLinesSink(folder / "shadow.jsonl"), CollectorRegistry(), PIPELINE)
    with run_server(writer) as writer_url, run_server(shadow) as shadow_url:
        app = create_app(ModelHolder(load_model(mlflow_registry.model_uri)),
                         BatchClient(f"{writer_url}/v1/batches", 10.0, token=PIPELINE_TOKEN),
                         CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
                         pipeline=PIPELINE, shadow_writer=BatchClient(
                             f"{shadow_url}/v1/batches", 10.0, token=PIPELINE_TOKEN))
        with run_server(app) as app_url:
            yield app_url, folder / "scored.jsonl"


@pytest.fixture
def app_url(stack: tuple[str, Path]) -> str:
    return stack[0]


def post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, content=orjson.dumps(body),
                      headers={**PIPELINE_AUTH, "content-type": "application/json"}, timeout=10)


def expected_classes(mlflow_registry: Registry) -> list[int]:
    return expected_classes_of(mlflow_registry, RECORDS)


GOOD_BODIES = {
    "one record": RECORDS[0],
    "list of records": RECORDS,
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS,
                                            "data": [[r[c] for c in COLUMNS] for r in RECORDS]}},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances as records": {"instances": RECORDS},
    "instances as rows": {"instances": [[r[c] for c in COLUMNS] for r in RECORDS]},
    "inputs as columns": {"inputs": {c: [r[c] for r in RECORDS] for c in COLUMNS}},
    "inputs as records": {"inputs": RECORDS},
}


@pytest.mark.parametrize("shape", list(GOOD_BODIES))
def test_predict_accepts_every_documented_body(app_url: str, shape: str,
                                               mlflow_registry: Registry) -> None:
    response = post(f"{app_url}/predict", GOOD_BODIES[shape])
    assert response.status_code == 200, response.text
    body = response.json()
    wanted = expected_classes(mlflow_registry)
    assert body["predictions"] == (wanted[:1] if shape == "one record" else wanted)
    assert body["model"] == {"name": "demo", "version": mlflow_registry.demo.version}
    assert all(set(scores) == {"0", "1"} for scores in body["scores"])


BAD_BODIES: dict[str, tuple[bytes, int, str]] = {
    "not JSON": (b"{amount: 1", 400, "not valid JSON"),
    "empty body": (b"", 400, "empty"),
    "a number": (b"42", 400, "JSON object"),
    "empty list": (b"[]", 400, "non-empty list"),
    "two MLflow keys": (orjson.dumps({"instances": RECORDS, "inputs": RECORDS}), 400,
                        "only one of"),
    "split with ragged rows": (orjson.dumps({"dataframe_split": {"columns": COLUMNS,
                                                                 "data": [[1, 2]]}}),
                               400, "dataframe_split.data[0]"),
    "split without columns": (orjson.dumps({"dataframe_split": {"data": [[1]]}}), 400,
                              "dataframe_split.columns"),
    "rows of the wrong width": (orjson.dumps({"instances": [[1, 2, 3]]}), 400,
                                "must have 8 values"),
    "missing feature": (orjson.dumps({k: v for k, v in RECORDS[0].items() if k != "hour"}),
                        422, "record 0: column 'hour' is missing"),
    "wrong type": (orjson.dumps(dict(RECORDS[0], amount="lots")), 422,
                   "column 'amount': 'lots' is not a number (double)"),
    "a fraction for a whole number": (orjson.dumps(dict(RECORDS[0], hour=3.5)), 422,
                                      "column 'hour': 3.5 is not a whole number (long)"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_predict_rejects_bad_bodies_with_a_message(app_url: str, case: str) -> None:
    body, status, fragment = BAD_BODIES[case]
    response = httpx.post(f"{app_url}/predict", headers=PIPELINE_AUTH, content=body, timeout=10)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_pipeline_batches_are_written_before_the_answer(
        stack: tuple[str, Path], mlflow_registry: Registry) -> None:
    app_url, output = stack
    batch = [{"id": f"e{i}", "time": 1_700_000_000_000 + i, "subject": None, "payload": r}
             for i, r in enumerate(RECORDS)]
    broken = {"id": "broken", "time": 1, "subject": None,
              "payload": dict(RECORDS[0], amount="lots")}
    response = post(f"{app_url}/v1/batches", {"events": [*batch, broken]})
    assert response.status_code == 200, response.text
    assert response.json()["scored"] == 3
    [rejection] = response.json()["rejected"]
    assert (rejection["index"], rejection["id"]) == (3, "broken")
    assert "amount" in rejection["reason"]
    written = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    mine = [w for w in written if w["id"] in {"e0", "e1", "e2"}]
    assert [w["prediction"] for w in mine] == expected_classes(mlflow_registry)
    assert [w["time"] for w in mine] == [e["time"] for e in batch]


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{}", "list under 'events'"),
    (orjson.dumps({"events": [{"id": 1, "time": 1, "payload": {}}]}), "'id' must be a string"),
    (orjson.dumps({"events": [{"id": "x", "payload": {}}]}), "missing the field 'time'"),
])
def test_pipeline_endpoint_rejects_malformed_batches(app_url: str, body: bytes,
                                                     fragment: str) -> None:
    response = httpx.post(f"{app_url}/v1/batches", headers=PIPELINE_AUTH, content=body, timeout=10)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_oip_health_and_metadata(app_url: str, mlflow_registry: Registry) -> None:
    assert httpx.get(f"{app_url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{app_url}/v2/health/ready").status_code == 200
    metadata = httpx.get(f"{app_url}/v2/models/demo").json()
    assert metadata["versions"] == [mlflow_registry.demo.version]
    inputs = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert inputs["amount"] == "FP64"
    assert inputs["hour"] == "INT64"
    assert inputs["card_present"] == "BOOL"
    assert inputs["channel"] == "BYTES"
    assert httpx.get(f"{app_url}/v2/models/nope").status_code == 404


def _tensor(name: str, datatype: str, values: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}


OIP_TYPES = {"amount": "FP64", "hour": "INT64", "distance_from_home_km": "FP64",
             "transactions_last_24h": "INT64", "merchant_category": "BYTES",
             "channel": "BYTES", "country": "BYTES", "card_present": "BOOL"}


def test_oip_infer(app_url: str, mlflow_registry: Registry) -> None:
    inputs = [_tensor(c, OIP_TYPES[c], [r[c] for r in RECORDS]) for c in COLUMNS]
    response = post(f"{app_url}/v2/models/demo/infer", {"id": "req-1", "inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "demo"
    assert body["model_version"] == mlflow_registry.demo.version
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["prediction"]["data"] == expected_classes(mlflow_registry)
    assert outputs["prediction"]["shape"] == [3]
    assert outputs["1"]["datatype"] == "FP64"


def _infer_inputs(**changes: Any) -> list[dict[str, Any]]:
    inputs = [_tensor(c, OIP_TYPES[c], [r[c] for r in RECORDS]) for c in COLUMNS]
    return [dict(t, **changes) if t["name"] == "amount" else t for t in inputs]


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"inputs": []}, 400, "non-empty 'inputs'"),
    ({"inputs": _infer_inputs(datatype="FLOAT")}, 400, "datatype must be one of"),
    ({"inputs": _infer_inputs(datatype={"FP64": 1})}, 400, "datatype must be one of"),
    ({"inputs": _infer_inputs(shape=[2])}, 400, "its shape needs 2 values, data has 3"),
    ({"inputs": _infer_inputs(data=["a", "b", "c"])}, 400, "value 'a' at position 0 is not FP64"),
    ({"inputs": _infer_inputs(shape=[3, 2])}, 400, "shape [rows] or [rows, 1]"),
    ({"inputs": [t for t in _infer_inputs() if t["name"] != "hour"]}, 400,
     "missing inputs: hour"),
])
def test_oip_infer_rejects_bad_requests(app_url: str, body: dict[str, Any], status: int,
                                        fragment: str) -> None:
    response = post(f"{app_url}/v2/models/demo/infer", body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_metrics_count_scored_records(app_url: str) -> None:
    post(f"{app_url}/predict", RECORDS)
    text = httpx.get(f"{app_url}/metrics").text
    assert 'agogosml_app_events_scored_total{endpoint="predict",model="demo"' in text
    assert "agogosml_app_predict_latency_seconds_bucket" in text


def test_shadow_batches_go_to_the_shadow_writer_only(stack: tuple[str, Path],
                                                     mlflow_registry: Registry) -> None:
    app_url, output = stack
    batch = [{"id": "shadow-1", "time": 1, "subject": None, "payload": RECORDS[0]}]
    response = httpx.post(f"{app_url}/v1/batches", content=orjson.dumps({"events": batch}),
                          headers={**PIPELINE_AUTH, SHADOW_HEADER: "1"}, timeout=10)
    assert response.status_code == 200, response.text
    shadow = [orjson.loads(line) for line in
              output.with_name("shadow.jsonl").read_bytes().splitlines()]
    assert [event["id"] for event in shadow] == ["shadow-1"]
    production = output.read_bytes() if output.exists() else b""
    assert b"shadow-1" not in production


def test_without_a_shadow_writer_shadow_batches_are_refused(mlflow_registry: Registry) -> None:
    app = create_app(ModelHolder(load_model(mlflow_registry.model_uri)),
                     BatchClient("http://127.0.0.1:9/v1/batches", 1.0), CollectorRegistry(),
                     writer_health_url="http://127.0.0.1:9/healthz", pipeline=PIPELINE)
    batch = [{"id": "s", "time": 1, "subject": None, "payload": RECORDS[0]}]
    with run_server(app) as app_url:
        response = httpx.post(f"{app_url}/v1/batches", content=orjson.dumps({"events": batch}),
                              headers={**PIPELINE_AUTH, SHADOW_HEADER: "1"}, timeout=10)
    assert response.status_code == 400
    assert "AGOGOSML_APP_SHADOW_WRITER_URL" in response.json()["error"]


def test_shadow_agreement_with_production_is_counted(stack: tuple[str, Path],
                                                     mlflow_registry: Registry) -> None:
    app_url, _ = stack
    batch = [{"id": f"agree-{i}", "time": 1, "subject": None, "payload": r}
             for i, r in enumerate(RECORDS)]
    production = post(f"{app_url}/v1/batches", {"events": batch})
    assert "predictions" not in production.json(), "only echoed when asked"
    echoed = httpx.post(f"{app_url}/v1/batches", content=orjson.dumps({"events": batch}),
                        headers={**PIPELINE_AUTH, ECHO_HEADER: "predictions"},
                        timeout=10).json()["predictions"]
    assert echoed == {f"agree-{i}": c for i, c in enumerate(expected_classes(mlflow_registry))}
    reference = dict(echoed, **{"agree-0": 1 - echoed["agree-0"]})  # one disagreement
    response = httpx.post(f"{app_url}/v1/batches",
                          content=orjson.dumps({"events": batch, "reference": reference}),
                          headers={**PIPELINE_AUTH, SHADOW_HEADER: "1"}, timeout=10)
    assert response.status_code == 200
    text = httpx.get(f"{app_url}/metrics").text
    assert "agogosml_app_shadow_compared_total 3.0" in text
    assert "agogosml_app_shadow_agreed_total 2.0" in text


@pytest.fixture(scope="module")
def small_app(mlflow_registry: Registry) -> Iterator[str]:
    """An app with small request limits, whose writer is never reached."""
    app = create_app(ModelHolder(load_model(mlflow_registry.model_uri)),
                     BatchClient("http://127.0.0.1:9/v1/batches", 1.0), CollectorRegistry(),
                     writer_health_url="http://127.0.0.1:9/healthz", pipeline=PIPELINE,
                     max_predict_records=2,
                     max_body_bytes=4_096, max_batch_events=2)
    with run_server(app) as url:
        yield url


POST_PATHS = ["/predict", "/v1/batches", "/v2/models/demo/infer"]


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_are_refused_before_they_are_read(small_app: str, path: str,
                                                           chunked: bool) -> None:
    body = orjson.dumps({"events": [], "padding": "x" * 5_000})
    content: Any = iter([body[:1_000], body[1_000:]]) if chunked else body
    response = httpx.post(f"{small_app}{path}", headers=PIPELINE_AUTH, content=content, timeout=10)
    assert response.status_code == 413, response.text
    assert "4096 bytes" in response.json()["error"]


def test_too_many_events_or_records_are_refused(small_app: str) -> None:
    events = [{"id": f"e{i}", "time": 1, "payload": r} for i, r in enumerate(RECORDS)]
    batch = post(f"{small_app}/v1/batches", {"events": events})
    assert batch.status_code == 413
    assert batch.json()["error"] == "3 events in one request; at most 2 are accepted"
    predict = post(f"{small_app}/predict", RECORDS)
    assert predict.status_code == 413
    assert "at most 2" in predict.json()["error"]


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


HOSTILE: dict[str, tuple[str, bytes]] = {
    "a feature nested 300 deep": (
        "/predict", orjson.dumps(RECORDS[0]).replace(
            b'"channel":', b'"nested": ' + _deep(300) + b', "channel":')),
    "a record value nested 1,000 deep": (
        "/predict", b'{"amount": ' + _deep(1_000) + b"}"),
    "nesting beyond what orjson reads": ("/predict", _deep(2_000)),
    "an integer beyond 64 bits": ("/predict", orjson.dumps(RECORDS[0]).replace(
        b'"hour":', b'"hour": 123456789012345678901234567890, "x":')),
    "an unsigned 64-bit integer": ("/predict", orjson.dumps(RECORDS[0]).replace(
        b'"hour":', b'"hour": 18446744073709551615, "x":')),
    "NaN": ("/predict", orjson.dumps(RECORDS[0]).replace(b'"hour":', b'"hour": NaN, "x":')),
    "infer data nested 300 deep": ("/v2/models/demo/infer", orjson.dumps(
        {"inputs": _infer_inputs(data=["@"], shape=[1])}).replace(b'"@"', _deep(300))),
    "batch payload nested 1,000 deep": ("/v1/batches", b'{"events": [{"id": "d", "time": 1, '
                                        b'"payload": {"amount": ' + _deep(1_000) + b"}}]}"),
    "time beyond int64": ("/v1/batches", b'{"events": [{"id": "t", "time": '
                          b'9223372036854775808, "payload": {}}]}'),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bodies_are_client_errors(app_url: str, case: str) -> None:
    path, body = HOSTILE[case]
    response = httpx.post(f"{app_url}{path}", headers=PIPELINE_AUTH, content=body, timeout=10)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    assert httpx.get(f"{app_url}/healthz").status_code == 200
    if case == "time beyond int64":
        assert response.json()["error"] == (
            "events[0]: event 'time' must be a 64-bit integer (epoch milliseconds)")
    if case == "batch payload nested 1,000 deep":
        assert response.json()["rejected"][0]["index"] == 0


def test_a_whole_number_for_a_double_is_scored_alone_and_beside_fractions(
        app_url: str, mlflow_registry: Registry) -> None:
    """It used to be refused alone and scored beside a fractional amount: pandas typed the
    column from its neighbours before MLflow enforced the signature."""
    whole = dict(RECORDS[0], amount=100)

    def predictions(payloads: list[dict[str, Any]]) -> dict[str, Any]:
        events = [{"id": f"w{n}", "time": n, "payload": p} for n, p in enumerate(payloads)]
        response = httpx.post(f"{app_url}/v1/batches", content=orjson.dumps({"events": events}),
                              headers={**PIPELINE_AUTH, ECHO_HEADER: "predictions"}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == []
        answer: dict[str, Any] = response.json()["predictions"]
        return answer

    alone = predictions([whole])
    beside = predictions([whole, dict(RECORDS[1], amount=12.5)])
    assert alone["w0"] == beside["w0"] == expected_classes_of(mlflow_registry,
                                                              [dict(whole, amount=100.0)])[0]
    predict = post(f"{app_url}/predict", whole)
    assert predict.status_code == 200, predict.text
    assert predict.json()["predictions"] == [alone["w0"]]


def expected_classes_of(mlflow_registry: Registry, records: list[dict[str, Any]]) -> list[int]:
    import numpy as np
    import pandas as pd

    model = load_model(mlflow_registry.model_uri)
    output = model.pyfunc.predict(pd.DataFrame.from_records(records)[COLUMNS])
    return [int(c) for c in np.asarray(output).argmax(axis=1)]


def requests_counted(app_url: str, endpoint: str, status: str) -> float:
    for line in httpx.get(f"{app_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f'agogosml_app_requests_total{{endpoint="{endpoint}",'
                           f'status="{status}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_scoring_requests_are_counted_by_route_and_status_for_the_rollout_gate(
        app_url: str) -> None:
    """What the gate judges a slot by: scoring routes only, by status; a refused token is
    counted apart, a probe not at all."""
    before = {(endpoint, status): requests_counted(app_url, endpoint, status)
              for endpoint, status in (("/predict", "200"), ("/predict", "422"),
                                       ("/v1/batches", "401"), ("/invocations", "200"),
                                       ("/v2/models/{name}/versions/{version}/infer", "400"))}
    assert post(f"{app_url}/predict", RECORDS[0]).status_code == 200
    assert post(f"{app_url}/predict", dict(RECORDS[0], hour=0.5)).status_code == 422
    assert httpx.post(f"{app_url}/v1/batches", json={"events": []}).status_code == 401
    assert post(f"{app_url}/invocations", {"dataframe_records": RECORDS}).status_code == 200
    assert post(f"{app_url}/v2/models/demo/versions/1/infer", {"inputs": []}).status_code == 400
    httpx.get(f"{app_url}/healthz")
    after = {key: requests_counted(app_url, *key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("/predict", "200"): 1, ("/predict", "422"): 1, ("/v1/batches", "401"): 0,
        ("/invocations", "200"): 1, ("/v2/models/{name}/versions/{version}/infer", "400"): 1}
    assert requests_counted(app_url, "/healthz", "200") == 0


@pytest.mark.parametrize("length", ["²".encode(), "1²".encode(), b"9" * 5_000])
def test_a_binary_header_length_no_integer_reading_takes_is_a_400(app_url: str,
                                                                  length: bytes) -> None:
    """Found by attack: str.isdigit() takes "²" and 5,000 digits, which int() refuses."""
    response = httpx.post(f"{app_url}/v2/models/demo/infer", content=b"{}",
                          headers=[*((k.encode(), v.encode()) for k, v in PIPELINE_AUTH.items()),
                                   (b"inference-header-content-length", length)],
                          timeout=10)
    assert response.status_code == 400, response.text
    assert "Inference-Header-Content-Length" in response.json()["error"]


@pytest.mark.parametrize("content_type", [["np"], {"x": 1}])
def test_an_input_content_type_that_is_not_a_string_is_a_400(app_url: str,
                                                             content_type: Any) -> None:
    inputs = [dict(t, parameters={"content_type": content_type}) if t["name"] == "amount"
              else t for t in _infer_inputs()]
    response = post(f"{app_url}/v2/models/demo/infer", {"inputs": inputs})
    assert response.status_code == 400, response.text
    assert "parameters.content_type" in response.json()["error"]


def test_invocations_with_a_column_named_twice_is_a_400(app_url: str) -> None:
    """Found by attack: MLflow's parser keeps both columns; explaining the model's failure
    read one name as a column and got a frame."""
    response = post(f"{app_url}/invocations", {"dataframe_split": {
        "columns": [*COLUMNS, "amount"], "data": [[RECORDS[0][c] for c in COLUMNS] + [99.0]]}})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error_code", "message"}
