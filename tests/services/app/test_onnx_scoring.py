"""The pipeline path's ONNX fast path on the demo model: the version the model loop
registered with parity is scored through onnxruntime, giving the pyfunc's predictions and
scores; a record the graph fails on is still isolated by bisection."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from agogosml.demo.data import FEATURES, events
from agogosml.envelope import Event
from agogosml.modelloop.onnx_export import convert
from agogosml.services.app.model import LoadedModel, load_model
from agogosml.services.app.onnx import PARITY_ATOL, NotRepresentable, OnnxModel
from agogosml.services.app.scoring import Scorer
from agogosml.services.app.signature import Column, Signature
from tests.conftest import Registry
from tests.servers import PIPELINE_AUTH
from tests.services.app.harness import app_behind_writer

pytestmark = pytest.mark.mlflow

RECORDS = [{name: item[name] for name in FEATURES} for item in events(200, seed=11)]
# Nulls where the signature allows them: a missing category, a missing amount.
RECORDS[5] = dict(RECORDS[5], merchant_category=None)
RECORDS[6] = dict(RECORDS[6], amount=None)


@pytest.fixture(scope="module")
def demo(mlflow_registry: Registry) -> LoadedModel:
    model = load_model(mlflow_registry.model_uri)
    assert model.onnx is not None, "the demo's version should be served through ONNX"
    return model


def assert_same(got: list[Any], want: list[Any], got_scores: Sequence[Mapping[str, float]],
                want_scores: Sequence[Mapping[str, float]]) -> None:
    assert got == want
    assert [set(row) for row in got_scores] == [set(row) for row in want_scores]
    worst = max(abs(row[name] - other[name]) for row, other in zip(got_scores, want_scores,
                                                                   strict=True) for name in row)
    assert worst <= PARITY_ATOL, worst


def test_the_graph_scores_as_the_pyfunc_does(demo: LoadedModel) -> None:
    inputs = demo.inputs(RECORDS)
    onnx = demo.score_input(inputs)
    pyfunc = replace(demo, onnx=None).score_input(demo.inputs(RECORDS))
    assert "frame" not in vars(inputs), "the ONNX path builds no DataFrame"
    assert_same(onnx.predictions, pyfunc.predictions, onnx.scores, pyfunc.scores)
    assert set(onnx.predictions) == {0, 1}


def test_v1_batches_through_onnx_writes_the_pyfunc_scores(
        mlflow_registry: Registry, demo: LoadedModel, tmp_path: Path) -> None:
    batch = [{"id": f"e{i}", "time": 1_700_000_000_000 + i, "subject": None, "payload": r}
             for i, r in enumerate(RECORDS)]
    broken = {"id": "broken", "time": 1, "subject": None,
              "payload": dict(RECORDS[0], hour=2.5)}
    with app_behind_writer(mlflow_registry.model_uri, tmp_path) as (app_url, _):
        response = httpx.post(f"{app_url}/v1/batches",
                              content=orjson.dumps({"events": [*batch[:50], broken,
                                                               *batch[50:]]}),
                              headers={**PIPELINE_AUTH, "content-type": "application/json"},
                              timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["scored"] == len(RECORDS)
    [rejection] = response.json()["rejected"]
    assert (rejection["index"], rejection["id"]) == (50, "broken")
    assert "hour" in rejection["reason"]
    written = [orjson.loads(line) for line in (tmp_path / "scored.jsonl").read_bytes()
               .splitlines()]
    assert [w["id"] for w in written] == [f"e{i}" for i in range(len(RECORDS))]
    pyfunc = replace(demo, onnx=None).score(demo.inputs(RECORDS).frame)
    assert_same([w["prediction"] for w in written], pyfunc.predictions,
                [w["scores"] for w in written], pyfunc.scores)


class FailsOn:
    """The demo's graph, failing (as onnxruntime does) on a batch holding a given amount."""

    def __init__(self, graph: OnnxModel, amount: float) -> None:
        self.graph = graph
        self.amount = amount
        self.calls = 0

    def probabilities_of(self, columns: dict[str, Any]) -> np.ndarray[Any, Any]:
        self.calls += 1
        if self.amount in np.asarray(columns["amount"]).tolist():
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input")
        return self.graph.probabilities_of(columns)


def test_bisection_still_isolates_a_record_the_graph_fails_on(demo: LoadedModel) -> None:
    assert demo.onnx is not None
    records = [dict(r, amount=float(i) + 0.5) for i, r in enumerate(RECORDS[10:138])]
    failing = FailsOn(demo.onnx, 77.5)
    model = replace(demo, onnx=failing)  # type: ignore[arg-type]
    batch = [Event(id=f"e{i}", time_ms=i, payload=r) for i, r in enumerate(records)]
    result = asyncio.run(Scorer().score(model, batch))
    [rejection] = result.rejected
    assert (rejection.index, rejection.id) == (77, "e77")
    assert "RuntimeError" in rejection.reason
    assert "INVALID_ARGUMENT" in rejection.reason
    assert len(result.scored) == len(records) - 1
    # The vectorized call, the whole batch again, then two halves per level.
    assert failing.calls <= 2 + 2 * math.ceil(math.log2(len(records))), failing.calls
    pyfunc = replace(demo, onnx=None).score_input(demo.inputs(records[:77] + records[78:]))
    assert_same([e.prediction for e in result.scored], pyfunc.predictions,
                [e.scores for e in result.scored], pyfunc.scores)


def test_extreme_doubles_score_as_the_pyfunc_does(demo: LoadedModel) -> None:
    records = [*RECORDS[:3], dict(RECORDS[3], amount=1e300), dict(RECORDS[4], amount=-1e-300)]
    got = demo.score_input(demo.inputs(records))
    want = replace(demo, onnx=None).score_input(demo.inputs(records))
    assert_same(got.predictions, want.predictions, got.scores, want.scores)


def test_a_float32_graph_leaves_a_batch_it_cannot_hold_to_the_pyfunc() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    pipeline = Pipeline([("impute", SimpleImputer()), ("classify", LogisticRegression())])
    pipeline.fit(frame, [0, 0, 1, 1])
    graph = OnnxModel.from_bytes(convert(pipeline, Signature((Column("x", "float"),))))
    assert graph.inputs == (("x", "tensor(float)"),)
    assert graph.probabilities_of({"x": np.array([0.5, math.nan])}).shape == (2, 2)
    with pytest.raises(NotRepresentable, match="input 'x'"):
        graph.feed({"x": np.array([1.0, 1e300])})
