"""The app as an MLflow scoring server, against the real one: `mlflow models serve` on the
same model answers the same bodies, and the app must answer them alike (issue 12).

Every body goes to both `/invocations`. Where MLflow answers 200, the app answers 200 with
the same JSON (predictions within 1e-12); where MLflow answers 400 or 415, the app answers
the same status, with MLflow's error shape (`error_code`, `message`), and a message about
a column's value names the column. MLflow's client-side helpers (serving input from an
input example, `validate_serving_input`, `ScoringServerClient`) are used as a user would.

What MLflow 3.x does here (read from mlflow/pyfunc/scoring_server/__init__.py and seen on
the demo model): JSON must be an object with exactly one of dataframe_split,
dataframe_records, instances, inputs (other keys are ignored, "params" is passed on and
ignored by a model without a params schema); values are cast to the signature with
pandas/numpy `astype` (so 100 -> 100.0, "12.5" -> 12.5, None -> NaN for doubles, 3.5 ->
3 for longs, anything -> truthiness for booleans; strings stay as sent); a cast that
fails, a missing column or a model that fails is 400; a content type other than
application/json, text/csv or Parquet, or a parameter other than charset=utf-8, is 415.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.models import convert_input_example_to_serving_input, validate_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from agogosml.demo.data import CHANNEL_RISK, COUNTRY_RISK, FEATURES, MERCHANT_RISK, events
from tests.conftest import Registry
from tests.services.app.harness import app_behind_writer
from tests.services.app.mlflow_reference import differences, mlflow_scoring_server

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
COLUMNS = list(FEATURES)
RECORDS = [{name: item[name] for name in FEATURES} for item in events(3, seed=5)]


@dataclass(frozen=True)
class Servers:
    reference: str
    app: str


@pytest.fixture(scope="module")
def servers(mlflow_registry: Registry,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """`mlflow models serve` and the app (as tests/services/app/test_contract.py starts it,
    in front of a writer, without api_keys) on the session's demo model."""
    folder = tmp_path_factory.mktemp("mlflow_scoring")
    with mlflow_scoring_server(mlflow_registry.model_uri, mlflow_registry.tracking_uri,
                               folder / "mlflow-serve.log") as reference, \
            app_behind_writer(mlflow_registry.model_uri, folder) as (app_url, _):
        yield Servers(reference, app_url)


# ---- bodies ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str | None = JSON
    column: str | None = None
    """The column an error about this body must name (when the app refuses it)."""


def as_json(document: Any, column: str | None = None) -> Body:
    return Body(json.dumps(document).encode(), JSON, column)


def split(records: list[dict[str, Any]], columns: list[str] = COLUMNS) -> dict[str, Any]:
    return {"columns": columns, "data": [[record[c] for c in columns] for record in records]}


def by_column(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [record[c] for record in records] for c in COLUMNS}


def rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [[record[c] for c in COLUMNS] for record in records]


def csv(records: list[dict[str, Any]], index: bool = False,
        content_type: str = CSV, column: str | None = None) -> Body:
    frame = pd.DataFrame.from_records(records)
    return Body(frame.to_csv(index=index).encode(), content_type, column)


def forms(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The same records in every JSON form MLflow takes (and two it refuses for this model:
    rows of mixed types become one array of strings)."""
    return {
        "dataframe_split": {"dataframe_split": split(records)},
        "dataframe_split with index": {
            "dataframe_split": {**split(records), "index": list(range(7, 7 + len(records)))}},
        "dataframe_split, columns reordered": {"dataframe_split": split(records, COLUMNS[::-1])},
        "dataframe_records": {"dataframe_records": records},
        "instances as records": {"instances": records},
        "instances as rows": {"instances": rows(records)},
        "instances as dict of columns": {"instances": by_column(records)},
        "inputs as records": {"inputs": records},
        "inputs as rows": {"inputs": rows(records)},
        "inputs as dict of columns": {"inputs": by_column(records)},
    }


PARAMS = {"": None, " + params": {"params": {"threshold": 0.5}},
          " + params null": {"params": None}}

FORM_CASES = {f"{form}{label}": as_json({**document, **(params or {})})
              for form, document in forms(RECORDS).items()
              for label, params in PARAMS.items()}
FORM_CASES |= {
    "instances as one record": as_json({"instances": RECORDS[0]}),
    "inputs as one record": as_json({"inputs": RECORDS[0]}),
    "csv": csv(RECORDS),
    "csv with the index": csv(RECORDS, index=True),
    "csv; charset=utf-8": csv(RECORDS, content_type=f"{CSV}; charset=utf-8"),
    "json; charset=utf-8": Body(FORM_CASES["dataframe_records"].content,
                                f"{JSON}; charset=utf-8"),
    "json; charset=UTF-8": Body(FORM_CASES["dataframe_records"].content,
                                f"{JSON}; charset=UTF-8"),
}

WHOLE = [dict(record, amount=100) for record in RECORDS]
"""The issue's case: whole numbers for a double column, as JSON and CSV write 100.0."""
WHOLE_CASES = {f"amount=100 in {form}": as_json(document)
               for form, document in forms(WHOLE).items() if "rows" not in form}
WHOLE_CASES["amount=100 in csv"] = csv(WHOLE)


def one(column: str | None = None, **values: Any) -> Body:
    """One record as dataframe_records with `values` replacing (or adding to) the first
    record's; `column` is what an error must name."""
    return as_json({"dataframe_records": [dict(RECORDS[0], **values)]}, column)


def without(*names: str) -> dict[str, Any]:
    return {k: v for k, v in RECORDS[0].items() if k not in names}


CAST_CASES = {
    # double columns
    "amount='12.5' (numeric string)": one(amount="12.5"),
    "amount=' 12 ' (padded numeric string)": one(amount=" 12 "),
    "amount='1e3'": one(amount="1e3"),
    "amount='nan'": one(amount="nan"),
    "amount=None": one(amount=None),
    "amount=True": one(amount=True),
    "amount=2**70": one(amount=2**70),
    "amount='lots'": one("amount", amount="lots"),
    "amount=''": one("amount", amount=""),
    "amount='inf' (the model refuses infinity)": one("amount", amount="inf"),
    "amount=[1]": one("amount", amount=[1]),
    "amount=[]": one("amount", amount=[]),
    "amount={'value': 1}": one("amount", amount={"value": 1}),
    "distance_from_home_km=3 (whole)": one(distance_from_home_km=3),
    # long columns
    "hour=3.0": one(hour=3.0),
    "hour=3.5 (truncated)": one(hour=3.5),
    "hour='3'": one(hour="3"),
    "hour=True": one(hour=True),
    "hour=False": one(hour=False),
    "hour=-1": one(hour=-1),
    "transactions_last_24h=2.0": one(transactions_last_24h=2.0),
    "hour='3.5'": one("hour", hour="3.5"),
    "hour='3.0'": one("hour", hour="3.0"),
    "hour='x'": one("hour", hour="x"),
    "hour=''": one("hour", hour=""),
    "hour='true'": one("hour", hour="true"),
    "hour=None": one("hour", hour=None),
    "hour=2**70 (overflows int64)": one("hour", hour=2**70),
    "hour=[3]": one("hour", hour=[3]),
    "hour={'a': 1}": one("hour", hour={"a": 1}),
    # string columns
    "channel=5": one(channel=5),
    "channel=1.5": one(channel=1.5),
    "channel=True": one(channel=True),
    "channel=None": one(channel=None),
    "channel=''": one(channel=""),
    "merchant_category=7": one(merchant_category=7),
    "channel=['pos'] (the model fails)": one("channel", channel=["pos"]),
    "channel={'a': 1} (the model fails)": one("channel", channel={"a": 1}),
    # boolean column
    "card_present=1": one(card_present=1),
    "card_present=0": one(card_present=0),
    "card_present=2": one(card_present=2),
    "card_present=0.5": one(card_present=0.5),
    "card_present=1.0": one(card_present=1.0),
    "card_present='true'": one(card_present="true"),
    "card_present='false'": one(card_present="false"),
    "card_present=''": one(card_present=""),
    "card_present=None": one(card_present=None),
    "card_present=[True]": one(card_present=[True]),
    "card_present={'a': 1}": one(card_present={"a": 1}),
    # columns
    "an extra column": one(extra=1),
    "an extra top-level key": as_json({"dataframe_records": RECORDS, "extra": 1}),
    "records with different extra keys": as_json(
        {"dataframe_records": [RECORDS[0], dict(RECORDS[1], extra=1)]}),
    "a missing column": as_json({"dataframe_records": [without("hour")]}, "hour"),
    "a column missing from the second record": as_json(
        {"dataframe_records": [RECORDS[0], without("hour")]}, "hour"),
    "a missing column in inputs": as_json({"inputs": [without("country")]}, "country"),
    "a missing column in dataframe_split": as_json(
        {"dataframe_split": split(RECORDS, [c for c in COLUMNS if c != "hour"])}, "hour"),
    "an empty record": as_json({"dataframe_records": [{}]}),
    # casts in the other forms
    "instances records: amount=100 and amount='7'": as_json(
        {"instances": [dict(RECORDS[0], amount=100), dict(RECORDS[1], amount="7")]}),
    "dataframe_records: amount=100 and amount='7'": as_json(
        {"dataframe_records": [dict(RECORDS[0], amount=100), dict(RECORDS[1], amount="7")]}),
    "instances records: hour=None": as_json(
        {"instances": [dict(RECORDS[0], hour=None)]}, "hour"),
    "inputs columns: amount=['12']": as_json({"inputs": {**by_column(RECORDS[:1]),
                                                         "amount": ["12"]}}),
    "inputs columns: amount=[1, 'x']": as_json(
        {"inputs": {**by_column(RECORDS[:2]), "amount": [1, "x"]}}, "amount"),
    "dataframe_split: hour='x'": as_json(
        {"dataframe_split": split([dict(RECORDS[0], hour="x")])}, "hour"),
    "csv: amount empty (NaN)": csv([dict(r, amount=None) for r in RECORDS]),
    "csv: card_present=1": csv([dict(r, card_present=1) for r in RECORDS]),
    "csv: an extra column": csv([dict(r, extra=1) for r in RECORDS]),
    "csv: amount='lots'": csv([dict(RECORDS[0], amount="lots")], column="amount"),
    "csv: hour=3.5": csv([dict(RECORDS[0], hour=3.5)], column="hour"),
    "csv: hour empty": csv([dict(RECORDS[0], hour=None)], column="hour"),
    "csv: card_present='yes'": csv([dict(RECORDS[0], card_present="yes")],
                                   column="card_present"),
    "csv: a missing column": csv([without("hour")], column="hour"),
}

RECORDS_JSON = json.dumps({"dataframe_records": RECORDS}).encode()


def parquet(records: list[dict[str, Any]]) -> Body:
    buffer = io.BytesIO()
    pd.DataFrame.from_records(records).to_parquet(buffer)
    return Body(buffer.getvalue(), PARQUET)


SHAPE_CASES = {
    "an empty body": Body(b""),
    "an empty object": Body(b"{}"),
    "malformed JSON": Body(b"{amount: 1"),
    "a JSON list": as_json(RECORDS),
    "a JSON number": Body(b"42"),
    "two format keys": as_json({"instances": RECORDS, "inputs": RECORDS}),
    "an unknown format key": as_json({"data": RECORDS}),
    "no records": as_json({"dataframe_records": []}),
    "dataframe_records as an object": as_json({"dataframe_records": RECORDS[0]}),
    "dataframe_records as a string": as_json({"dataframe_records": "x"}),
    "dataframe_records null": as_json({"dataframe_records": None}),
    "dataframe_records holding null": as_json({"dataframe_records": [RECORDS[0], None]}),
    "dataframe_records of lists": as_json({"dataframe_records": [[1, 2]]}),
    "dataframe_split without data": as_json({"dataframe_split": {}}),
    "dataframe_split without columns": as_json({"dataframe_split": {"data": rows(RECORDS)}}),
    "dataframe_split with short rows": as_json(
        {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}),
    "dataframe_split as a list": as_json({"dataframe_split": [1, 2]}),
    "instances as a number": as_json({"instances": 5}),
    "instances null": as_json({"instances": None}),
    "instances empty": as_json({"instances": []}),
    "inputs as an empty object": as_json({"inputs": {}}),
    "instances columns of different lengths": as_json(
        {"instances": {**by_column(RECORDS[:1]), "amount": [1, 2]}}),
    "NaN literal for amount (Python's json takes it)": Body(
        RECORDS_JSON.replace(b"199.99", b"NaN", 1)),
    "Infinity literal for amount": Body(RECORDS_JSON.replace(b"199.99", b"Infinity", 1)),
    "a UTF-8 byte order mark": Body(b"\xef\xbb\xbf" + RECORDS_JSON),
    "a duplicate key (the last wins)": Body(
        b'{"dataframe_records": [], "dataframe_records": ' + json.dumps(RECORDS).encode()
        + b"}"),
    "invalid UTF-8": Body(b'{"dataframe_records": [{"channel": "\xff"}]}'),
    "an empty csv": Body(b"", CSV),
    "a csv of a header only": Body(pd.DataFrame(columns=COLUMNS).to_csv(index=False).encode(),
                                   CSV),
    "a csv of other columns": Body(b"a,b\n1,2\n", CSV),
    "parquet (MLflow takes it too)": parquet(RECORDS),
    "text/plain": Body(RECORDS_JSON, "text/plain"),
    "application/xml": Body(RECORDS_JSON, "application/xml"),
    "json; charset=latin-1": Body(RECORDS_JSON, f"{JSON}; charset=latin-1"),
    'json; charset="utf-8" (quoted)': Body(RECORDS_JSON, f'{JSON}; charset="utf-8"'),
    "json; format=pandas-split (MLflow 1 parameter)": Body(
        RECORDS_JSON, f"{JSON}; format=pandas-split"),
    "Application/JSON (MLflow compares case-sensitively)": Body(RECORDS_JSON,
                                                                "Application/JSON"),
}

CASES = {**FORM_CASES, **WHOLE_CASES, **CAST_CASES, **SHAPE_CASES}


def invoke(url: str, body: Body) -> httpx.Response:
    headers = {} if body.content_type is None else {"content-type": body.content_type}
    return httpx.post(f"{url}/invocations", content=body.content, headers=headers, timeout=30)


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The app's error body, in MLflow's shape: `error_code` and `message`."""
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"the app's {response.status_code} body is not JSON: {response.text!r}")
    assert isinstance(body, dict), body
    assert isinstance(body.get("error_code"), str), body
    assert isinstance(body.get("message"), str), body
    assert body["message"], body
    return body["error_code"], body["message"]


def assert_same_answer(servers: Servers, body: Body) -> tuple[httpx.Response, httpx.Response]:
    reference, app = invoke(servers.reference, body), invoke(servers.app, body)
    assert reference.status_code < 500, f"MLflow failed: {reference.text}"  # the harness
    assert app.status_code // 100 == reference.status_code // 100, (
        f"app {app.status_code} {app.text[:500]!r}; "
        f"MLflow {reference.status_code} {reference.text[:500]!r}")
    if reference.status_code == 200:
        assert app.headers["content-type"].startswith(JSON), app.headers
        assert not differences(app.json(), reference.json()), (
            differences(app.json(), reference.json()), app.text, reference.text)
    else:
        if reference.status_code in (400, 415):
            assert app.status_code == reference.status_code, (
                f"app {app.status_code} {app.text[:500]!r}; "
                f"MLflow {reference.status_code} {reference.text[:500]!r}")
        error_of(app)
    return reference, app


@pytest.mark.parametrize("case", list(CASES))
def test_invocations_answer_like_mlflow(servers: Servers, case: str) -> None:
    body = CASES[case]
    reference, app = assert_same_answer(servers, body)
    if reference.status_code != 200 and body.column is not None:
        _, message = error_of(app)
        assert body.column in message, message


def test_every_good_form_predicts_the_same(servers: Servers) -> None:
    """A guard on the cases above: MLflow scores the records alike in every form it takes,
    so the parity above is parity with the right predictions."""
    answers = {case: invoke(servers.reference, FORM_CASES[case])
               for case in FORM_CASES if "rows" not in case and "one record" not in case}
    assert {case: r.status_code for case, r in answers.items()} == dict.fromkeys(answers, 200)
    first = answers["dataframe_records"].json()
    assert len(first["predictions"]) == len(RECORDS)
    assert all(not differences(r.json(), first) for r in answers.values())


def test_no_content_type_is_415_where_mlflow_fails(servers: Servers) -> None:
    """MLflow's server splits a missing content type as a string and answers 500 Internal
    Server Error; the app answers as for any unsupported content type."""
    body = Body(RECORDS_JSON, None)
    assert invoke(servers.reference, body).status_code == 500
    app = invoke(servers.app, body)
    assert app.status_code == 415, app.text
    error_of(app)


@pytest.mark.parametrize("path", ["/ping", "/health", "/version"])
def test_status_routes_answer_like_mlflow(servers: Servers, path: str) -> None:
    reference = httpx.get(f"{servers.reference}{path}", timeout=10)
    app = httpx.get(f"{servers.app}{path}", timeout=10)
    assert reference.status_code == 200
    assert (app.status_code, app.text) == (reference.status_code, reference.text)
    if path == "/version":
        assert app.text == mlflow.__version__


# ---- random records -----------------------------------------------------------------

def _mixed(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        valid, valid,
        st.integers(-5, 500).map(float),                               # whole floats
        st.floats(-10, 1_000, allow_nan=False).map(lambda x: round(x, 3)),
        st.integers(-5, 500).map(str),                                 # numeric strings
        st.integers(0, 50_000).map(lambda n: f"{n / 100:.2f}"),
        st.sampled_from(["nan", "inf", "1e3", " 12 ", "1_0", "true", "False", ""]),
        st.text(alphabet="abxyz -", max_size=4),                       # junk strings
        st.none(), st.booleans(),
        st.lists(st.integers(0, 3), max_size=2))


VALID: dict[str, st.SearchStrategy[Any]] = {
    "amount": st.floats(0.01, 5_000, allow_nan=False).map(lambda x: round(x, 2)),
    "hour": st.integers(0, 23),
    "distance_from_home_km": st.floats(0, 200, allow_nan=False).map(lambda x: round(x, 1)),
    "transactions_last_24h": st.integers(0, 20),
    "merchant_category": st.sampled_from(sorted(MERCHANT_RISK)),
    "channel": st.sampled_from(sorted(CHANNEL_RISK)),
    "country": st.sampled_from(sorted(COUNTRY_RISK)),
    "card_present": st.booleans(),
}
RANDOM_RECORDS = st.lists(st.fixed_dictionaries({c: _mixed(VALID[c]) for c in COLUMNS}),
                          min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(records=RANDOM_RECORDS,
       form=st.sampled_from(["dataframe_records", "dataframe_split", "instances",
                             "inputs as dict of columns"]))
def test_random_records_answer_like_mlflow(servers: Servers, records: list[dict[str, Any]],
                                           form: str) -> None:
    document = {"dataframe_split": split(records)} if form == "dataframe_split" \
        else {"inputs": by_column(records)} if form == "inputs as dict of columns" \
        else {form: records}
    reference, app = invoke(servers.reference, as_json(document)), \
        invoke(servers.app, as_json(document))
    assert app.status_code // 100 == reference.status_code // 100, (
        f"app {app.status_code} {app.text[:500]!r}; "
        f"MLflow {reference.status_code} {reference.text[:500]!r}")
    if reference.status_code == 200:
        assert not differences(app.json(), reference.json()), (app.text, reference.text)
    else:
        error_of(app)


# ---- MLflow's client side -------------------------------------------------------------

EXAMPLES = ["the model's input example", "a DataFrame of events",
            "a DataFrame with whole amounts", "a dict of columns", "a list of records"]


@pytest.fixture(scope="module")
def input_examples(mlflow_registry: Registry) -> dict[str, Any]:
    """Inputs as a user has them at hand: the example logged with the model, DataFrames,
    a dict of columns, a list of records."""
    example = mlflow.pyfunc.load_model(mlflow_registry.model_uri).input_example
    assert isinstance(example, pd.DataFrame)
    assert len(example) > 0
    frame = pd.DataFrame.from_records(RECORDS)
    examples = {
        "the model's input example": example,
        "a DataFrame of events": frame,
        "a DataFrame with whole amounts": frame.assign(amount=[100, 25, 7]),
        "a dict of columns": {c: list(frame[c]) for c in COLUMNS},
        "a list of records": RECORDS,
    }
    assert list(examples) == EXAMPLES
    return examples


@pytest.mark.parametrize("example", EXAMPLES)
def test_serving_input_from_an_example_predicts_as_mlflow_validates(
        servers: Servers, mlflow_registry: Registry, input_examples: dict[str, Any],
        example: str) -> None:
    serving_input = convert_input_example_to_serving_input(input_examples[example])
    assert isinstance(serving_input, str)
    with warnings.catch_warnings():  # deprecated for mlflow.models.predict since 3.13
        warnings.simplefilter("ignore", FutureWarning)
        expected = validate_serving_input(mlflow_registry.model_uri, serving_input)
    response = invoke(servers.app, Body(serving_input.encode()))
    assert response.status_code == 200, response.text
    wanted = json.loads(json.dumps({"predictions": np.asarray(expected).tolist()}))
    assert not differences(response.json(), wanted), (response.text, wanted)


def test_mlflow_scoring_server_client_works_against_the_app(servers: Servers) -> None:
    """MLflow's own client, unchanged: it waits on /ping, reads /version, and posts a
    DataFrame (as dataframe_split) with and without params."""
    clients: dict[str, Any] = {
        name: ScoringServerClient("127.0.0.1", httpx.URL(url).port)  # type: ignore[no-untyped-call]
        for name, url in (("app", servers.app), ("reference", servers.reference))}
    clients["app"].wait_server_ready(timeout=10)
    clients["app"].ping()
    assert clients["app"].get_version() == clients["reference"].get_version()
    frame = pd.DataFrame.from_records(RECORDS).assign(amount=[100, 25.5, 7])
    for params in (None, {"threshold": 0.5}):
        app, reference = (clients[name].invoke(frame, params=params)
                          for name in ("app", "reference"))
        assert set(app) == {"predictions"}
        assert not differences(json.loads(app.to_json()), json.loads(reference.to_json()))
        predictions = app.get_predictions()
        assert isinstance(predictions, pd.DataFrame)
        assert predictions.shape == (len(RECORDS), 2)
