"""The demo producer's monitor options: a feature shifted from the N-th event on by the
asked number of its standard deviations, and every event's true label sent to a feedback
stream, keyed by the event's id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from agogosml.demo.data import ID_FIELD, labelled_events
from agogosml.demo.producer import Drift, Feedback, produce
from agogosml.streaming.files import JsonLinesSink


def read(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


async def test_the_shift_starts_where_asked_and_labels_follow(tmp_path: Path) -> None:
    events_sink = JsonLinesSink(tmp_path / "input.jsonl")
    labels_sink = JsonLinesSink(tmp_path / "labels.jsonl")
    for sink in (events_sink, labels_sink):
        await sink.start()
    sent = await produce(events_sink, 400, 100_000.0, drift=Drift("hour", 1.0, after=250),
                         feedback=Feedback(labels_sink, delay_s=0.0))
    for sink in (events_sink, labels_sink):
        await sink.stop()
    assert sent == 400
    pool, truths = labelled_events(400)
    events = read(tmp_path / "input.jsonl")
    sigma = float(np.std([item["hour"] for item in pool], ddof=1))
    assert events[:250] == pool[:250]
    shifts = {event["hour"] - item["hour"]
              for event, item in zip(events[250:], pool[250:], strict=True)}
    assert shifts == {round(sigma)}
    assert all(isinstance(event["hour"], int) for event in events)
    labels = read(tmp_path / "labels.jsonl")
    assert labels == [{"id": item[ID_FIELD], "label": truth}
                      for item, truth in zip(pool, truths, strict=True)]


def test_only_numeric_features_can_be_shifted() -> None:
    with pytest.raises(ValueError, match="numeric feature"):
        Drift("country", 1.0)
