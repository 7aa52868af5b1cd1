"""Scoring a pipeline batch: a model that fails on some records rejects just those, found
in O(k log n) predict calls, whatever it raises; and scoring never keeps the event loop
from answering /healthz."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from agogosml.envelope import Event, ModelRef, features_problem, is_json_scalar
from agogosml.services.app.model import LoadedModel
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.scoring import Scorer
from agogosml.services.app.service import create_app
from agogosml.services.app.signature import Column, Signature
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE, PIPELINE_AUTH, PIPELINE_TOKEN, run_server

WAIT_S = 20.0


class ScriptedModel:
    """A pyfunc whose `predict` raises `error` when a frame holds an amount in `bad`, and
    counts its calls. `scores` replaces the output row of an amount, when given."""

    def __init__(self, bad: set[float], error: Exception,
                 scores: dict[float, list[float]] | None = None) -> None:
        self.bad = bad
        self.error = error
        self.scores = scores or {}
        self.calls = 0

    def predict(self, frame: pd.DataFrame) -> Any:
        self.calls += 1
        amounts = frame["amount"].tolist()
        if self.bad.intersection(amounts):
            raise self.error
        return np.array([self.scores.get(a, [0.25, 0.75]) for a in amounts])


def loaded(pyfunc: Any) -> LoadedModel:
    return LoadedModel(ref=ModelRef("scripted", "1"), pyfunc=pyfunc,
                       signature=Signature((Column("amount", "double"),)))


def batch(amounts: list[Any], ids: list[str] | None = None) -> list[Event]:
    return [Event(id=(ids or [f"e{n}" for n in range(len(amounts))])[n], time_ms=n,
                  payload={"amount": amount}) for n, amount in enumerate(amounts)]


@pytest.mark.parametrize("error", [RuntimeError("boom\nsecond line"), ValueError("no good"),
                                   ZeroDivisionError("x"), KeyError("amount")])
def test_only_the_failing_records_are_rejected_in_k_log_n_calls(error: Exception) -> None:
    n, bad = 512, {7.0, 300.0, 301.0}
    model = ScriptedModel(bad, error)
    events = batch([float(i) for i in range(n)], ids=["same"] * n)
    result = asyncio.run(Scorer().score(loaded(model), events))
    assert [r.index for r in result.rejected] == [7, 300, 301]
    assert {r.id for r in result.rejected} == {"same"}
    assert len(result.scored) == n - 3
    assert [e.time_ms for e in result.scored] == [i for i in range(n) if i not in {7, 300, 301}]
    assert model.calls <= 1 + 2 * len(bad) * math.ceil(math.log2(n)), model.calls
    reason = result.rejected[0].reason
    if isinstance(error, ValueError | KeyError):
        assert reason == str(error).splitlines()[0], "input errors keep their message"
    else:
        assert reason == f"model error: {type(error).__name__}: {str(error).splitlines()[0]}"


def test_reasons_are_capped() -> None:
    model = ScriptedModel({1.0}, RuntimeError("x" * 10_000))
    result = asyncio.run(Scorer().score(loaded(model), batch([1.0])))
    assert 500 <= len(result.rejected[0].reason) < 600


def test_a_column_no_record_has_rejects_the_batch_without_bisection() -> None:
    model = ScriptedModel(set(), RuntimeError())
    events = [Event(id=f"e{n}", time_ms=0, payload={"other": n}) for n in range(64)]
    result = asyncio.run(Scorer().score(loaded(model), events))
    assert [r.index for r in result.rejected] == list(range(64))
    assert {r.reason for r in result.rejected} == {"column 'amount' is missing"}
    assert model.calls == 0


def test_outputs_that_cannot_travel_are_rejected_per_record() -> None:
    model = ScriptedModel(set(), RuntimeError(), scores={2.0: [math.nan, 1.0]})
    result = asyncio.run(Scorer().score(loaded(model), batch([1.0, 2.0, 3.0])))
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "model output: score '0' must be a finite number")]
    assert len(result.scored) == 2


class GatedModel:
    """`predict` blocks until released, on the calls `blocks` picks; it raises on records
    whose amount is negative."""

    def __init__(self, blocks: Callable[[pd.DataFrame], bool]) -> None:
        self.blocks = blocks
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, frame: pd.DataFrame) -> Any:
        if self.blocks(frame):
            self.entered.set()
            assert self.release.wait(WAIT_S), "the test never released the model"
        if (frame["amount"] < 0).any():
            raise RuntimeError("negative amount")
        return np.tile([0.25, 0.75], (len(frame), 1))


@pytest.fixture
def writer_url(tmp_path: Any) -> Iterator[str]:
    with run_server(create_writer(JsonLinesSink(tmp_path / "scored.jsonl"),
                                  CollectorRegistry(), PIPELINE)) as url:
        yield url


def serve(model: GatedModel, writer_url: str) -> Any:
    app = create_app(ModelHolder(loaded(model)),
                     BatchClient(f"{writer_url}/v1/batches", 30.0, token=PIPELINE_TOKEN),
                     CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
                     pipeline=PIPELINE,
                     scorer=Scorer(inline_max_events=8))
    return run_server(app)


def post_batch(url: str, amounts: list[float]) -> httpx.Response:
    body = {"events": [{"id": f"e{n}", "time": n, "payload": {"amount": a}}
                       for n, a in enumerate(amounts)]}
    return httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH, content=orjson.dumps(body),
                      timeout=WAIT_S * 2)


def healthz_while_blocked(url: str, model: GatedModel, amounts: list[float]) -> httpx.Response:
    """Posts a batch that blocks in the model; answers /healthz meanwhile, then releases."""
    with ThreadPoolExecutor(1) as pool:
        answer: Future[httpx.Response] = pool.submit(post_batch, url, amounts)
        assert model.entered.wait(WAIT_S), "the model was never called"
        health = httpx.get(f"{url}/healthz", timeout=WAIT_S)
        assert not answer.done(), "/healthz answered while the batch was being scored"
        model.release.set()
        scored = answer.result(WAIT_S * 2)
    assert health.status_code == 200
    return scored


def test_probes_are_answered_while_a_large_batch_is_scored(writer_url: str) -> None:
    model = GatedModel(lambda frame: len(frame) > 8)
    with serve(model, writer_url) as url:
        assert post_batch(url, [1.0, 2.0]).json()["scored"] == 2, "the model is measured"
        scored = healthz_while_blocked(url, model, [float(n) for n in range(50)])
    assert scored.json() == {"scored": 50, "rejected": []}


def test_probes_are_answered_while_a_batch_is_bisected(writer_url: str) -> None:
    model = GatedModel(lambda frame: len(frame) == 1 and frame["amount"].iloc[0] < 0)
    with serve(model, writer_url) as url:
        assert post_batch(url, [1.0]).json()["scored"] == 1, "the model is measured"
        scored = healthz_while_blocked(url, model, [1.0, -1.0, 2.0, 3.0])
    assert scored.json() == {"scored": 3, "rejected": [
        {"index": 1, "id": "e1", "reason": "model error: RuntimeError: negative amount"}]}


def test_a_model_not_yet_measured_is_scored_off_the_loop(writer_url: str) -> None:
    model = GatedModel(lambda frame: True)
    with serve(model, writer_url) as url:
        scored = healthz_while_blocked(url, model, [1.0])
    assert scored.json() == {"scored": 1, "rejected": []}


class ThreadRecorder:
    """A pyfunc that notes which thread each call ran on, after `delay_s` of sleep."""

    def __init__(self, delay_s: float = 0.0, busy_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.busy_s = busy_s
        self.threads: list[threading.Thread] = []

    def predict(self, frame: pd.DataFrame) -> Any:
        self.threads.append(threading.current_thread())
        if self.delay_s:
            time.sleep(self.delay_s)  # a deliberately slow model
        started = time.thread_time()
        while time.thread_time() - started < self.busy_s:
            pass  # a model that computes for busy_s of CPU time
        return np.tile([0.25, 0.75], (len(frame), 1))


def on_loop(scorer: Scorer, pyfunc: ThreadRecorder, sizes: list[int]) -> list[bool]:
    """For each batch size in turn, whether the model was called on the event loop's thread."""
    model = loaded(pyfunc)

    async def run() -> list[bool]:
        for size in sizes:
            await scorer.score(model, batch([1.0] * size))
        loop_thread = threading.current_thread()
        return [thread is loop_thread for thread in pyfunc.threads]

    return asyncio.run(run())


def test_only_small_batches_of_a_measured_fast_model_are_scored_on_the_loop() -> None:
    scorer = Scorer(inline_max_events=4, inline_budget_s=5.0)
    assert on_loop(scorer, ThreadRecorder(), [2, 2, 4, 5, 1]) == [False, True, True, False, True]


def test_a_model_that_blocks_is_on_the_loop_once_at_most() -> None:
    """Sleeping costs no CPU, so only a call on the loop shows the model is slow."""
    scorer = Scorer(inline_max_events=4, inline_budget_s=0.01)
    assert on_loop(scorer, ThreadRecorder(delay_s=0.02), [1, 1, 1, 1]) \
        == [False, True, False, False]


def test_a_model_that_computes_slowly_never_reaches_the_loop() -> None:
    scorer = Scorer(inline_max_events=4, inline_budget_s=0.01)
    assert on_loop(scorer, ThreadRecorder(busy_s=0.03), [1, 1, 1]) == [False, False, False]


@pytest.mark.parametrize("count", [4, 20])
def test_a_malformed_event_is_named_by_its_index_in_small_and_large_batches(
        writer_url: str, count: int) -> None:
    events: list[dict[str, Any]] = [{"id": f"e{n}", "time": n, "payload": {"amount": 1.0}}
                                    for n in range(count)]
    events[count - 2]["time"] = "yesterday"
    with serve(GatedModel(lambda frame: False), writer_url) as url:
        response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                              content=orjson.dumps({"events": events}), timeout=WAIT_S)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"events[{count - 2}]: event 'time'")


def inputs_of(payloads: list[dict[str, Any]], columns: tuple[str, ...] | None) -> list[Any]:
    """The features of each scored event, for a model taking `columns`."""
    signature = None if columns is None else Signature(tuple(Column(name, None, required=False)
                                                             for name in columns))
    model = LoadedModel(ref=ModelRef("any", "1"), pyfunc=ThreadRecorder(), signature=signature)
    events = [Event(id=f"e{n}", time_ms=n, payload=p) for n, p in enumerate(payloads)]
    result = asyncio.run(Scorer().score(model, events))
    assert result.rejected == []
    return [event.to_json()["features"] for event in result.scored]


PERSON = {"name": "Ada Lovelace", "email": "ada@example.com", "customer_id": "C000001"}


def test_scored_events_carry_exactly_the_models_inputs_as_it_was_given_them() -> None:
    payloads = [{"amount": 12.5, "hour": 3, **PERSON},
                {"amount": 7, "channel": "pos", **PERSON}]
    assert inputs_of(payloads, ("amount", "hour")) == [{"amount": 12.5, "hour": 3},
                                                       {"amount": 7, "hour": None}]


def test_a_model_that_names_no_inputs_gets_no_features() -> None:
    """Its inputs cannot be told from the personal fields beside them."""
    assert inputs_of([{"amount": 12.5, **PERSON}], None) == [{}]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**64, max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                               max_size=3),
    max_leaves=6)
"""What a payload parsed from JSON may hold (orjson reads integers up to 2**64)."""


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.fixed_dictionaries({"amount": JSON_VALUES, "hour": JSON_VALUES}),
                         min_size=1, max_size=5))
def test_whatever_the_payload_holds_the_writer_takes_the_features(
        payloads: list[dict[str, Any]]) -> None:
    """A model that scores any value must never produce an event the writer refuses; a
    value no scored event can carry is left out, the rest is kept as given."""
    features = inputs_of([{**p, **PERSON} for p in payloads], ("amount", "hour"))
    for payload, inputs in zip(payloads, features, strict=True):
        assert features_problem(inputs) is None
        assert set(inputs) <= {"amount", "hour"}
        for name, value in payload.items():
            assert inputs.get(name, "left out") == (value if is_json_scalar(value)
                                                    else "left out")
