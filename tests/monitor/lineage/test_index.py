"""Recording training runs and asking which model versions used a subject (both backends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from agogosml.monitor.store import CURRENT_VERSION as STORE_VERSION
from agogosml.privacy.lineage import (
    InvalidSubjectError,
    LineageError,
    RunRecord,
    SqlLineageIndex,
    VersionUse,
)
from agogosml.privacy.lineage.schema import CURRENT_VERSION
from tests.monitor.conftest import StoreFactory
from tests.monitor.lineage.conftest import IndexFactory


def test_a_subject_leads_to_every_version_trained_on_it(index: SqlLineageIndex) -> None:
    assert index.record_run("run-a", "fraud", "sha256:aaa", ["p1", "p2"]) == 2
    assert index.record_run("run-b", "fraud", "sha256:bbb", ["p2", "p3"]) == 2
    index.record_version("run-a", "fraud", "1")
    index.record_version("run-b", "fraud", "2")
    index.record_version("run-b", "fraud-eu", "1")  # one run, registered twice

    assert index.versions_for("p2") == [
        VersionUse("fraud", "1", "run-a", "sha256:aaa"),
        VersionUse("fraud", "2", "run-b", "sha256:bbb"),
        VersionUse("fraud-eu", "1", "run-b", "sha256:bbb"),
    ]
    assert index.versions_for("p1") == [VersionUse("fraud", "1", "run-a", "sha256:aaa")]
    assert index.versions_for("nobody") == []


def test_runs_for_includes_runs_never_registered(index: SqlLineageIndex) -> None:
    index.record_run("run-a", "fraud", "sha256:aaa", ["p1"])
    index.record_run("run-b", "fraud", "sha256:bbb", ["p1"])
    index.record_version("run-b", "fraud", "7")

    runs = index.runs_for("p1")
    assert [(r.run_id, r.model_name, r.dataset_digest) for r in runs] == [
        ("run-a", "fraud", "sha256:aaa"), ("run-b", "fraud", "sha256:bbb")]
    assert all(isinstance(r, RunRecord) and r.recorded_at_ms > 0 for r in runs)
    assert [v.run_id for v in index.versions_for("p1")] == ["run-b"]


def test_recording_the_same_run_or_version_twice_adds_nothing(index: SqlLineageIndex) -> None:
    assert index.record_run("run-a", "fraud", "sha256:aaa", ["p1", "p1", "p2"]) == 2
    assert index.record_run("run-a", "fraud", "sha256:aaa", ["p1", "p2", "p9"]) == 0
    assert index.record_version("run-a", "fraud", "1") is True
    assert index.record_version("run-a", "fraud", "1") is False

    assert index.runs_for("p9") == []
    assert len(index.versions_for("p1")) == 1


def test_a_run_recorded_again_with_another_dataset_is_refused(index: SqlLineageIndex) -> None:
    index.record_run("run-a", "fraud", "sha256:aaa", ["p1"])
    with pytest.raises(LineageError, match="sha256:aaa"):
        index.record_run("run-a", "fraud", "sha256:zzz", ["p1"])


def test_a_version_of_an_unknown_run_is_refused(index: SqlLineageIndex) -> None:
    with pytest.raises(LineageError, match="record_run first"):
        index.record_version("never-recorded", "fraud", "1")


def test_a_run_with_one_invalid_subject_is_not_recorded_at_all(index: SqlLineageIndex) -> None:
    with pytest.raises(InvalidSubjectError, match="NUL"):
        index.record_run("run-a", "fraud", "sha256:aaa", ["p1", "bad\x00"])
    assert index.runs_for("p1") == []
    assert index.record_run("run-a", "fraud", "sha256:aaa", ["p1"]) == 1


def test_forgetting_a_subject_removes_it_from_every_run(index: SqlLineageIndex) -> None:
    index.record_run("run-a", "fraud", "sha256:aaa", ["p1", "p2"])
    index.record_run("run-b", "fraud", "sha256:bbb", ["p1"])
    index.record_version("run-a", "fraud", "1")

    assert index.forget_subject("p1") == 2
    assert index.versions_for("p1") == []
    assert index.runs_for("p1") == []
    assert index.forget_subject("p1") == 0
    assert [v.model_version for v in index.versions_for("p2")] == ["1"]


def test_the_index_survives_reopening_beside_the_event_store_in_one_database(
        open_index: IndexFactory, make_store: StoreFactory,
        new_location: Callable[[], str]) -> None:
    location = new_location()
    first = open_index(location)
    first.record_run("run-a", "fraud", "sha256:aaa", ["p1"])
    first.close()
    events = make_store(location)  # the monitor's store, migrated in the same database

    again = open_index(location)
    assert again.schema_version() == CURRENT_VERSION
    assert events.schema_version() == STORE_VERSION
    assert [r.run_id for r in again.runs_for("p1")] == ["run-a"]


def test_an_index_at_version_zero_is_brought_up_to_date(
        open_index: IndexFactory, new_location: Callable[[], str]) -> None:
    location = new_location()
    assert open_index(location, schema_version=0).schema_version() == 0
    upgraded = open_index(location)
    assert upgraded.schema_version() == CURRENT_VERSION
    assert upgraded.record_run("run-a", "fraud", "sha256:aaa", ["p1"]) == 1


def test_two_processes_recording_the_same_run_at_once_store_it_once(
        open_index: IndexFactory, new_location: Callable[[], str]) -> None:
    location = new_location()
    writers = [open_index(location), open_index(location)]  # two connections, as two trainers
    subjects = [f"ps_{i:05d}" for i in range(2_000)]
    start = threading.Barrier(len(writers))

    def record(index: SqlLineageIndex) -> int:
        start.wait()
        return index.record_run("run-a", "fraud", "sha256:aaa", subjects)

    with ThreadPoolExecutor(len(writers)) as pool:
        stored = sorted(pool.map(record, writers))

    assert stored == [0, len(subjects)]
    assert [r.run_id for r in writers[0].runs_for("ps_01999")] == ["run-a"]
