"""The monitor's statistics take whatever a valid scored event can hold: hypothesis feeds
arbitrary batches (odd feature values and names, missing or out-of-range scores, several
model versions, one with no reference profile) and every view stays computable and
finite, without the guard that keeps ingestion going ever being needed."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agogosml.demo.data import FEATURES, transactions
from agogosml.modelloop.dataset import DatasetSpec, resolve_schema, split_holdout
from agogosml.modelloop.estimators import build_pipeline
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.monitor.references import ReferenceProfiles
from agogosml.monitor.state import MonitorState
from agogosml.monitor.store import SqliteEventStore
from agogosml.monitor.store.base import AsyncEventStore, ScoredEvent


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    frame = transactions(3_000, 7)
    schema = resolve_schema(frame, DatasetSpec())
    split = split_holdout(frame, schema, 0.2, 7)
    pipeline = build_pipeline(schema, "logistic_regression", {}, 7)
    pipeline.fit(split.train_x, split.train_y)
    return ReferenceProfile.build(split.train_x, split.train_y, schema,
                                  pipeline.predict_proba(split.train_x))


SCALARS = (st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
FEATURE_NAMES = st.sampled_from([*FEATURES, "", "<b>x</b>", "extra"])
SCORES = st.dictionaries(st.sampled_from(["0", "1", "other"]),
                         st.floats(allow_nan=False, allow_infinity=False), max_size=3)


@st.composite
def events(draw: st.DrawFn) -> list[ScoredEvent]:
    count = draw(st.integers(0, 30))
    return [ScoredEvent(
        event_id=f"e{n}", subject=draw(st.none() | st.text(max_size=5)),
        event_time_ms=draw(st.integers(0, 2**52)), scored_at_ms=draw(st.integers(0, 2**52)),
        model_name="demo", model_version=draw(st.sampled_from(["1", "2", "unknown"])),
        prediction=draw(SCALARS), scores=draw(SCORES),
        features=draw(st.dictionaries(FEATURE_NAMES, SCALARS, max_size=10)),
        ingested_at_ms=0) for n in range(count)]


def finite(value: Any) -> bool:
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(events(), min_size=1, max_size=4))
def test_any_scored_batches_leave_every_view_computable(
        profile: ReferenceProfile, batches: list[list[ScoredEvent]], tmp_path_factory:
        pytest.TempPathFactory) -> None:
    def load(_: str, version: str) -> ReferenceProfile:
        if version == "unknown":
            raise LookupError("no such version")
        return profile

    store = SqliteEventStore(tmp_path_factory.mktemp("state") / "events.db")
    state = MonitorState(AsyncEventStore(store), ReferenceProfiles(load))
    try:
        for batch in batches:
            state.on_stored(batch)
            asyncio.run(state.tick())
        assert state.analysis_failures == 0
        for view in (state.live(), state.drift(), state.performance(), state.metric_snapshot()):
            assert finite(view), view
        states = {v["model_version"]: v["profile"] for v in state.drift()}
        if "unknown" in states:
            assert states["unknown"].startswith("no reference profile: LookupError")
    finally:
        store.close()
