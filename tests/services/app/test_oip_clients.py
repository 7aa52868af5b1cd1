"""The app's Open Inference Protocol v2 side, driven by the real clients as their users drive
them: Triton's HTTP client (tritonclient, in the dev environment) and kserve's
InferenceRESTClient (in the client environment of `make clients`, through kserve_driver.py).
Predictions must equal the model's own to 1e-12; every failure must reach the client's user
as the server's message, decoded without a client-side failure."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

import agogosml
from agogosml.demo.data import FEATURES, events
from agogosml.localstack.broker import free_port
from agogosml.services.app.model import load_model
from tests.clients import clients_python
from tests.conftest import Registry
from tests.servers import run_server
from tests.services.app.harness import app_behind_writer, app_for

MODEL = "demo"
RECORDS = [{name: item[name] for name in FEATURES} for item in events(4, seed=12)]
COLUMNS = list(FEATURES)
DATATYPES = {"amount": "FP64", "hour": "INT64", "distance_from_home_km": "FP64",
             "transactions_last_24h": "INT64", "merchant_category": "BYTES",
             "channel": "BYTES", "country": "BYTES", "card_present": "BOOL"}
"""The OIP datatype of each signature column (double, long, string, boolean)."""
NUMPY = {"FP64": np.float64, "INT64": np.int64, "BYTES": np.object_, "BOOL": np.bool_}
OUTPUTS = [("prediction", "INT64"), ("0", "FP64"), ("1", "FP64")]
"""What the demo classifier's infer returns: the class and each class's probability."""
DRIVER = Path(__file__).with_name("kserve_driver.py")
DECODE_FAILURE = "an exception occurred in the client while decoding the response"
"""What tritonclient says when an error body is not {"error": ...}."""


# --- the app and the clients ----------------------------------------------------------------

@pytest.fixture(scope="module")
def app_url(mlflow_registry: Registry,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the demo model, in front of a real output writer."""
    with app_behind_writer(mlflow_registry.model_uri,
                           tmp_path_factory.mktemp("oip-writer")) as (url, _):
        yield url


@pytest.fixture(scope="module")
def writerless_url(mlflow_registry: Registry) -> Iterator[str]:
    """The app whose output writer is down: its URL is a port nothing listens on."""
    writer_url = f"http://127.0.0.1:{free_port()}"
    with run_server(app_for(mlflow_registry.model_uri, writer_url)) as url:
        yield url


def _triton(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=30.0)


@pytest.fixture
def client(app_url: str) -> Iterator[triton.InferenceServerClient]:
    with _triton(app_url) as connection:
        yield connection


def kserve(url: str, *commands: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs the commands with kserve's client in its own environment (kserve_driver.py)."""
    done = subprocess.run([str(clients_python()), str(DRIVER)], capture_output=True,
                          input=json.dumps({"url": url, "commands": list(commands)}),
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, f"kserve driver failed:\n{done.stderr}"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def kserve_one(url: str, command: dict[str, Any]) -> dict[str, Any]:
    [result] = kserve(url, command)
    return result


# --- what the model itself says -------------------------------------------------------------

def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records)[COLUMNS]


def expected(registry: Registry, records: list[dict[str, Any]] = RECORDS) -> dict[str, Any]:
    """The model's own outputs for the records: each class's probability and the class."""
    scores = np.asarray(load_model(registry.model_uri).pyfunc.predict(frame(records)))
    return {"prediction": scores.argmax(axis=1), "0": scores[:, 0], "1": scores[:, 1]}


def assert_outputs_match(outputs: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Every returned output equals the model's own (probabilities to 1e-12)."""
    for name, values in outputs.items():
        got = np.asarray(values)
        if name == "prediction":
            assert got.tolist() == wanted[name].tolist(), name
        else:
            np.testing.assert_allclose(got.astype(np.float64), wanted[name], rtol=0, atol=1e-12,
                                       err_msg=name)


def column(name: str, records: list[dict[str, Any]] = RECORDS) -> list[Any]:
    return [record[name] for record in records]


Tensor = tuple[str, np.ndarray[Any, Any]]
"""A tensor's datatype and values."""


def triton_inputs(binary: bool, overrides: dict[str, Tensor] | None = None,
                  records: list[dict[str, Any]] = RECORDS) -> list[triton.InferInput]:
    """One tensor per signature column; overrides: name -> (datatype, values)."""
    overrides = overrides or {}
    inputs = []
    for name in COLUMNS:
        datatype, values = overrides.get(
            name, (DATATYPES[name], np.array(column(name, records), dtype=NUMPY[DATATYPES[name]])))
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def triton_outputs(result: triton.InferResult) -> dict[str, Any]:
    names = [output["name"] for output in result.get_response()["outputs"]]
    return {name: result.as_numpy(name) for name in names}


def kserve_inputs(overrides: dict[str, tuple[str, list[Any]]] | None = None,
                  records: list[dict[str, Any]] = RECORDS) -> list[dict[str, Any]]:
    overrides = overrides or {}
    return [{"name": name, "datatype": overrides.get(name, (DATATYPES[name],))[0],
             "shape": [len(records)],
             "data": overrides.get(name, (None, column(name, records)))[1]}
            for name in COLUMNS]


def server_error(call: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    """The error tritonclient raises for a call; it must have decoded the server's body."""
    with pytest.raises(InferenceServerException) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert DECODE_FAILURE not in error.message(), error.message()
    return error


# --- health and metadata --------------------------------------------------------------------

def test_triton_server_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "agogosml"
    assert metadata["version"] == agogosml.__version__
    assert "binary_tensor_data" in metadata["extensions"]


@pytest.mark.parametrize("version", ["", "1"])
def test_triton_model_metadata(client: triton.InferenceServerClient, version: str) -> None:
    metadata = client.get_model_metadata(MODEL, version)
    assert metadata["name"] == MODEL
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "mlflow"
    assert {t["name"]: (t["datatype"], t["shape"]) for t in metadata["inputs"]} == {
        name: (datatype, [-1]) for name, datatype in DATATYPES.items()}
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        (name, datatype, [-1]) for name, datatype in OUTPUTS]


def test_triton_model_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("nope")


def test_metadata_matches_what_infer_returns(client: triton.InferenceServerClient) -> None:
    metadata = client.get_model_metadata(MODEL)
    result = client.infer(MODEL, triton_inputs(binary=False))
    returned = result.get_response()["outputs"]
    assert [(t["name"], t["datatype"]) for t in returned] == [
        (t["name"], t["datatype"]) for t in metadata["outputs"]]
    assert all(t["shape"] == [len(RECORDS)] for t in returned)


@pytest.mark.parametrize("version", ["2", "latest"])
def test_triton_unknown_model_or_version_is_not_found(client: triton.InferenceServerClient,
                                                      version: str) -> None:
    assert server_error(client.get_model_metadata, "nope").status() == "404"
    assert server_error(client.get_model_metadata, MODEL, version).status() == "404"
    error = server_error(client.infer, MODEL, triton_inputs(binary=True), model_version=version)
    assert error.status() == "404"
    error = server_error(client.infer, "nope", triton_inputs(binary=True))
    assert error.status() == "404"
    assert "nope" in error.message()


# --- infer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["", "1"])
def test_triton_infer_json_tensors(client: triton.InferenceServerClient, version: str,
                                   mlflow_registry: Registry) -> None:
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name, _ in OUTPUTS]
    result = client.infer(MODEL, triton_inputs(binary=False), model_version=version,
                          outputs=outputs, request_id="triton-json")
    response = result.get_response()
    assert response["id"] == "triton-json"
    assert response["model_name"] == MODEL
    assert all("data" in t and "binary_data_size" not in t.get("parameters", {})
               for t in response["outputs"])
    assert_outputs_match(triton_outputs(result), expected(mlflow_registry))


@pytest.mark.parametrize("version", ["", "1"])
def test_triton_infer_binary_tensors_by_default(client: triton.InferenceServerClient,
                                                version: str, mlflow_registry: Registry) -> None:
    """tritonclient's defaults: inputs in binary, and, with no outputs named, every output in
    binary (it sends parameters.binary_data_output)."""
    result = client.infer(MODEL, triton_inputs(binary=True), model_version=version)
    response = result.get_response()
    assert [t["name"] for t in response["outputs"]] == [name for name, _ in OUTPUTS]
    assert all("binary_data_size" in t.get("parameters", {}) for t in response["outputs"])
    assert_outputs_match(triton_outputs(result), expected(mlflow_registry))


def test_triton_requested_outputs_subset_in_order(client: triton.InferenceServerClient,
                                                  mlflow_registry: Registry) -> None:
    outputs = [triton.InferRequestedOutput("1", binary_data=True),
               triton.InferRequestedOutput("prediction", binary_data=False)]
    result = client.infer(MODEL, triton_inputs(binary=True), outputs=outputs)
    returned = result.get_response()["outputs"]
    assert [t["name"] for t in returned] == ["1", "prediction"]
    assert "binary_data_size" in returned[0].get("parameters", {})
    assert "data" in returned[1]
    assert_outputs_match(triton_outputs(result), expected(mlflow_registry))


def test_triton_unknown_output_is_refused(client: triton.InferenceServerClient) -> None:
    outputs = [triton.InferRequestedOutput("probability")]
    error = server_error(client.infer, MODEL, triton_inputs(binary=True), outputs=outputs)
    assert error.status() == "400"
    assert "probability" in error.message()
    assert "prediction" in error.message(), "names the outputs there are"


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(("name", "datatype", "values"), [
    ("amount", "BYTES", np.array(["lots", "1", "2", "3"], dtype=np.object_)),
    ("hour", "FP64", np.array([1.5, 2.0, 3.0, 4.0])),
    ("card_present", "BYTES", np.array(["yes", "no", "yes", "no"], dtype=np.object_)),
])
def test_triton_wrong_datatype_or_lossy_value_names_the_input(
        client: triton.InferenceServerClient, binary: bool, name: str, datatype: str,
        values: np.ndarray[Any, Any]) -> None:
    error = server_error(client.infer, MODEL,
                         triton_inputs(binary=binary, overrides={name: (datatype, values)}))
    assert error.status() == "400"
    assert name in error.message()


def test_triton_generates_a_response_id(client: triton.InferenceServerClient) -> None:
    """tritonclient sends no id unless given one; the answer carries one all the same."""
    first = client.infer(MODEL, triton_inputs(binary=True)).get_response()
    second = client.infer(MODEL, triton_inputs(binary=True)).get_response()
    assert isinstance(first.get("id"), str)
    assert first["id"]
    assert first["id"] != second["id"]


def test_triton_rows_as_column_vectors(client: triton.InferenceServerClient,
                                       mlflow_registry: Registry) -> None:
    """Shape [rows, 1], as MLServer's codecs send columns."""
    overrides: dict[str, Tensor] = {
        name: (DATATYPES[name],
               np.array(column(name), dtype=NUMPY[DATATYPES[name]]).reshape(-1, 1))
        for name in COLUMNS}
    result = client.infer(MODEL, triton_inputs(binary=True, overrides=overrides))
    assert_outputs_match(triton_outputs(result), expected(mlflow_registry))


# --- errors outside the model routes --------------------------------------------------------

def test_triton_decodes_not_found_on_an_unrouted_path(
        client: triton.InferenceServerClient) -> None:
    """Triton has /v2/models/{name}/config and /v2/repository/index; the app does not."""
    error = server_error(client.get_model_config, MODEL)
    assert error.status() == "404"
    assert "/v2/models/demo/config" in error.message()
    error = server_error(client.get_model_repository_index)
    assert error.status() == "404"
    assert "/v2/repository/index" in error.message()


def test_triton_decodes_method_not_allowed(client: triton.InferenceServerClient) -> None:
    """Metadata of a model named "demo/infer" is a GET of /v2/models/demo/infer, a POST
    route: 405, which the client must decode like any other error."""
    error = server_error(client.get_model_metadata, "demo/infer")
    assert error.status() == "405"
    assert error.message()


def test_server_readiness_ignores_a_writer_that_is_down(writerless_url: str) -> None:
    with _triton(writerless_url) as connection:
        assert connection.is_server_ready()
        assert connection.is_model_ready(MODEL)
    assert [r["value"] for r in kserve(writerless_url, {"op": "ready"},
                                       {"op": "model_ready", "model": MODEL})] == [True, True]
    assert httpx.get(f"{writerless_url}/readyz", timeout=10).status_code == 503


# --- kserve's InferenceRESTClient -----------------------------------------------------------

def kserve_outputs(value: dict[str, Any]) -> dict[str, Any]:
    return {output["name"]: output["data"] for output in value["outputs"]}


def test_kserve_health(app_url: str) -> None:
    results = kserve(app_url, {"op": "live"}, {"op": "ready"},
                     {"op": "model_ready", "model": MODEL},
                     {"op": "model_ready", "model": "nope"})
    assert [r.get("value") for r in results] == [True, True, True, False], results


@pytest.mark.parametrize("binary", [False, True])
def test_kserve_infer(app_url: str, binary: bool, mlflow_registry: Registry) -> None:
    result = kserve_one(app_url, {"op": "infer", "model": MODEL, "inputs": kserve_inputs(),
                                  "binary": binary, "id": "kserve-1"})
    assert result["ok"], result
    value = result["value"]
    assert value["id"] == "kserve-1"
    assert value["model_name"] == MODEL
    assert [(o["name"], o["datatype"], o["shape"]) for o in value["outputs"]] == [
        (name, datatype, [len(RECORDS)]) for name, datatype in OUTPUTS]
    assert_outputs_match(kserve_outputs(value), expected(mlflow_registry))


def test_kserve_binary_outputs(app_url: str, mlflow_registry: Registry) -> None:
    everything, chosen = kserve(
        app_url,
        {"op": "infer", "model": MODEL, "inputs": kserve_inputs(), "binary": True,
         "parameters": {"binary_data_output": True}},
        {"op": "infer", "model": MODEL, "inputs": kserve_inputs(), "binary": True,
         "outputs": [{"name": "0", "parameters": {"binary_data": True}}]})
    assert everything["ok"], everything
    assert everything["value"]["binary_response"]
    assert_outputs_match(kserve_outputs(everything["value"]), expected(mlflow_registry))
    assert chosen["ok"], chosen
    assert chosen["value"]["binary_response"]
    assert list(kserve_outputs(chosen["value"])) == ["0"]
    assert_outputs_match(kserve_outputs(chosen["value"]), expected(mlflow_registry))


def test_kserve_integers_in_an_fp64_tensor(app_url: str, mlflow_registry: Registry) -> None:
    """How JavaScript and Go clients write 100.0: 100."""
    amounts = [100, 20, 5, 1_000]
    result = kserve_one(app_url, {"op": "infer", "model": MODEL,
                                  "inputs": kserve_inputs({"amount": ("FP64", amounts)})})
    assert result["ok"], result
    records = [dict(record, amount=float(a)) for record, a in zip(RECORDS, amounts, strict=True)]
    assert_outputs_match(kserve_outputs(result["value"]), expected(mlflow_registry, records))


@pytest.mark.parametrize(("name", "datatype", "values"), [
    ("amount", "BYTES", ["lots", "1", "2", "3"]),
    ("transactions_last_24h", "FP64", [1.5, 2, 3, 4]),
])
def test_kserve_surfaces_the_message_naming_the_input(app_url: str, name: str, datatype: str,
                                                      values: list[Any]) -> None:
    result = kserve_one(app_url, {"op": "infer", "model": MODEL,
                                  "inputs": kserve_inputs({name: (datatype, values)})})
    assert not result["ok"]
    assert (result["error"], result["status"]) == ("HTTPStatusError", 400), result
    assert name in result["message"], "kserve shows the body's 'error' in its message"


def test_kserve_unknown_model_is_not_found(app_url: str) -> None:
    result = kserve_one(app_url, {"op": "infer", "model": "nope", "inputs": kserve_inputs()})
    assert (result["ok"], result.get("status")) == (False, 404), result
    assert "nope" in result["message"]


def mlserver_pandas_request(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What MLServer's PandasCodec.encode_request(frame) sends (built by hand: MLServer cannot
    share kserve's environment): every column a [rows, 1] tensor, strings as BYTES with the
    input's content_type "str", and the request's content_type "pd"."""
    inputs = []
    for name in COLUMNS:
        tensor: dict[str, Any] = {"name": name, "datatype": DATATYPES[name],
                                  "shape": [len(records), 1], "data": column(name, records)}
        if DATATYPES[name] == "BYTES":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def pandas_response(value: dict[str, Any]) -> pd.DataFrame:
    """PandasCodec.decode_response: one column per output."""
    return pd.DataFrame({o["name"]: np.asarray(o["data"]).reshape(o["shape"][0])
                         for o in value["outputs"]})


def test_kserve_mlserver_pandas_request(app_url: str, mlflow_registry: Registry) -> None:
    result = kserve_one(app_url, {"op": "infer_dict", "model": MODEL,
                                  "body": mlserver_pandas_request(RECORDS)})
    assert result["ok"], result
    value = result["value"]
    assert (value["parameters"] or {}).get("content_type") == "pd"
    decoded = pandas_response(value)
    assert list(decoded.columns) == [name for name, _ in OUTPUTS]
    assert_outputs_match({str(c): decoded[c].to_numpy() for c in decoded.columns},
                         expected(mlflow_registry))


def test_an_unknown_request_content_type_is_refused(app_url: str) -> None:
    body = dict(mlserver_pandas_request(RECORDS), parameters={"content_type": "np"})
    result = kserve_one(app_url, {"op": "infer_dict", "model": MODEL, "body": body})
    assert (result["ok"], result.get("status")) == (False, 400), result
    assert "content_type" in result["message"]
