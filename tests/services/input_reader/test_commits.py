"""Offsets are committed in fetch order, whatever order batches finish in."""

from __future__ import annotations

from agogosml.services.input_reader.commits import CommitTracker
from agogosml.streaming.base import Position, SourceRecord


def records(partition: str, *offsets: int) -> list[SourceRecord]:
    return [SourceRecord(b"", Position("t", partition, o), 0) for o in offsets]


def test_a_later_batch_waits_for_the_earlier_one() -> None:
    tracker = CommitTracker()
    first = tracker.open(records("0", 0, 1) + records("1", 0))
    second = tracker.open(records("0", 2, 3))
    third = tracker.open(records("1", 1, 2))
    assert tracker.finish(second) == {}
    assert tracker.finish(first) == {("t", "0"): 3, ("t", "1"): 0}
    assert tracker.in_flight == 1
    assert tracker.finish(third) == {("t", "1"): 2}
    assert tracker.in_flight == 0


def test_an_unfinished_batch_blocks_every_commit_after_it() -> None:
    tracker = CommitTracker()
    tracker.open(records("0", 0))
    later = [tracker.open(records("0", n)) for n in range(1, 5)]
    assert [tracker.finish(batch) for batch in later] == [{}, {}, {}, {}]
