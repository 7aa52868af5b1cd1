"""Property: any batch of events, redelivered any number of times, reads back as stored and
is counted once (both backends)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agogosml.monitor.store import ScoredEvent
from agogosml.monitor.store.base import SqlEventStore

T0 = 1_767_225_600_000
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
# PostgreSQL's text cannot hold NUL (JSON strings escape it, plain columns cannot); UTF-8 has
# no lone surrogates.
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
               max_size=12)
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | INT64 | FLOATS | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def events(draw: st.DrawFn) -> ScoredEvent:
    return ScoredEvent(
        event_id=draw(st.sampled_from(["a", "b", "ü", "id-😀"]) | TEXT),
        subject=draw(st.none() | TEXT),
        event_time_ms=T0 + draw(st.integers(0, 10**9)),
        scored_at_ms=draw(st.integers(0, 2**53)),
        model_name="demo",
        model_version=draw(st.sampled_from(["1", "2"])),
        prediction=draw(JSON),
        scores=draw(st.dictionaries(st.text(max_size=4), FLOATS, max_size=3) | JSON),
        features=draw(JSON),
        ingested_at_ms=draw(st.integers(0, 2**53)))


def same(a: Any, b: Any) -> bool:
    """JSON equality where -0.0 and 0.0 both stay floats (a float is never read back as int)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=40, deadline=None, database=None,  # keeps no example cache in the clone
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(events(), max_size=25), redeliveries=st.integers(1, 3))
def test_a_batch_reads_back_as_stored_and_counts_once(
        make_store: Callable[..., SqlEventStore], new_location: Callable[[], str],
        batch: list[ScoredEvent], redeliveries: int) -> None:
    store = make_store(new_location())
    first: dict[tuple[str, str], ScoredEvent] = {}
    for e in batch:
        first.setdefault((e.event_id, e.model_version), e)
    assert store.insert_events(batch) == len(first)
    for _ in range(redeliveries):
        assert store.insert_events(batch) == 0
    stored = store.events(T0, T0 + 10**9 + 1, limit=1_000).events
    assert len(stored) == len(first)
    for e in stored:
        expected = first[(e.event_id, e.model_version)]
        for name in ("subject", "event_time_ms", "scored_at_ms", "model_name",
                     "ingested_at_ms"):
            assert getattr(e, name) == getattr(expected, name)
        for name in ("prediction", "scores", "features"):
            assert same(getattr(e, name), getattr(expected, name)), name
    counted = store.counts(T0, T0 + 10**9 + 1, 10**9 + 1)
    assert sum(c.count for c in counted) == len(first)
    store.close()
