"""Forgetting a subject over real stores (SQLite: the journal, the lineage index, the
subject keys, the event store; CSV and JSON-lines snapshots): everything of theirs is gone,
nobody else's is touched, the audit record says what happened, and a request interrupted
after any step resumes to the same end as one that was never interrupted."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from agogosml.monitor.store.base import Label, ScoredEvent
from agogosml.monitor.store.sqlite import SqliteEventStore
from agogosml.privacy.actions import decrypt_value
from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.errors import KeyUnavailableError
from agogosml.privacy.forget.audit import audit_record
from agogosml.privacy.forget.datasets import purge_snapshot
from agogosml.privacy.forget.journal import DONE, open_journal
from agogosml.privacy.forget.process import STEPS, Forgetter
from agogosml.privacy.keys import Keyring
from agogosml.privacy.lineage.index import open_lineage_index
from agogosml.privacy.policy import Policy
from agogosml.privacy.subjectkeys import open_subject_keys, subject_key_id

GONE, STAYS = "ps_gone", "ps_stays"


class Crash(BaseException):
    """What a process killed between two steps looks like to the steps after it."""


def event(event_id: str, subject: str) -> ScoredEvent:
    return ScoredEvent(event_id=event_id, subject=subject, event_time_ms=1_000,
                       scored_at_ms=1_005, model_name="demo", model_version="1", prediction=0,
                       scores={"1": 0.1}, features={"amount": 1.0}, ingested_at_ms=1_010)


@dataclass
class World:
    root: Path
    url: str
    csv: Path
    jsonl: Path
    kek: Keyring
    token: str
    """A field of GONE's, encrypted under their key before the forget."""

    def forgetter(self, stack: ExitStack, **extra: Any) -> Forgetter:
        journal = stack.enter_context(open_journal(self.url))
        lineage = stack.enter_context(open_lineage_index(self.url))
        keys = open_subject_keys(self.url, self.kek)
        stack.callback(keys.close)
        events = SqliteEventStore(self.root / "events.db")
        stack.callback(events.close)
        return Forgetter(journal, lineage, [self.csv, self.jsonl], "customer_id", events, keys,
                         **extra)

    def state(self) -> dict[str, Any]:
        """Everything a forget changes, to compare runs."""
        events = SqliteEventStore(self.root / "events.db")
        lineage = open_lineage_index(self.url)
        try:
            return {
                "csv": self.csv.read_text(), "jsonl": self.jsonl.read_text(),
                "events": sorted((e.event_id, e.subject)
                                 for e in events.events(0, 10_000, limit=100).events),
                "labelled": [p.event.event_id for p in events.labelled("1", 0, 10_000)],
                "lineage": {s: [u.model_version for u in lineage.versions_for(s)]
                            for s in (GONE, STAYS)},
            }
        finally:
            events.close()
            lineage.close()


@pytest.fixture
def world(tmp_path: Path) -> World:
    url = f"sqlite:///{tmp_path / 'privacy.db'}"
    csv = tmp_path / "snapshot.csv"
    csv.write_text(f"customer_id,amount\n{GONE},1.5\n{STAYS},2.5\n{GONE},3.5\n")
    jsonl = tmp_path / "snapshot.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps({"customer_id": s, "amount": 1}) + b"\n"
                               for s in (STAYS, GONE, STAYS)))
    with open_lineage_index(url) as lineage:
        lineage.record_run("run-1", "demo", "sha256:a", [GONE, STAYS])
        lineage.record_version("run-1", "demo", "1")
        lineage.record_run("run-2", "demo", "sha256:b", [STAYS])
        lineage.record_version("run-2", "demo", "2")
    events = SqliteEventStore(tmp_path / "events.db")
    events.insert_events([event("e1", GONE), event("e2", STAYS), event("e3", GONE)])
    events.add_labels([Label("e1", 1, 2_000), Label("e2", 0, 2_000)])
    events.close()
    kek = Keyring(encryption_keys={"kek-1": os.urandom(32)})
    keys = open_subject_keys(url, kek)
    engine = PolicyEngine(Policy.from_yaml("fields: {iban: encrypt}"),
                          Keyring(encryption_keys={"2026-12": os.urandom(32)}),
                          subject_keys=keys)
    token = engine.apply({"iban": "NL91ABNA0417164300"}, subject=GONE)["iban"]
    keys.close()
    return World(tmp_path, url, csv, jsonl, kek, token)


def test_a_forget_removes_the_subject_everywhere_and_nobody_else(world: World) -> None:
    with ExitStack() as stack:
        request = world.forgetter(stack).forget(GONE)
    assert request.state == DONE
    state = world.state()
    assert GONE not in state["csv"]
    assert state["csv"].count(STAYS) == 1
    assert GONE not in state["jsonl"]
    assert state["jsonl"].count(STAYS) == 2
    assert state["events"] == [("e2", STAYS)]
    assert state["labelled"] == ["e2"]
    assert state["lineage"] == {GONE: [], STAYS: ["1", "2"]}
    with open_subject_keys(world.url, world.kek) as keys, \
            pytest.raises(KeyUnavailableError, match="shredded"):
        decrypt_value(world.token, keys.keyring_for_key_id(subject_key_id(GONE)))

    record = audit_record(request)
    assert record["subject"] == GONE
    assert record["state"] == DONE
    assert record["pending"] == []
    assert [step["step"] for step in record["steps"]] == list(STEPS)
    outcomes = {step["step"]: step["outcome"] for step in record["steps"]}
    assert outcomes["snapshots"]["rows_removed"] == {str(world.csv): 2, str(world.jsonl): 1}
    assert outcomes["event_store"] == {"events": 2, "labels": 1}
    assert outcomes["keys"] == {"shredded": True}
    assert outcomes["versions"]["versions"][0]["model_version"] == "1"
    assert record["replaced"]["tainted_versions"] == ["demo/1"]
    assert record["deadline_status"].startswith("met: done in 0.00 days of 30")


@pytest.mark.parametrize("crash_after", STEPS)
def test_a_forget_interrupted_after_any_step_resumes_to_the_same_end(
        world: World, tmp_path: Path, crash_after: str) -> None:
    def crash(step: str) -> None:
        if step == crash_after:
            raise Crash(step)

    with ExitStack() as stack, pytest.raises(Crash):
        world.forgetter(stack, after_step=crash).forget(GONE)
    with ExitStack() as stack:
        journal = stack.enter_context(open_journal(world.url))
        [interrupted] = journal.requests(GONE)
        assert interrupted.state == "open"
        assert set(interrupted.steps) == set(STEPS[:STEPS.index(crash_after) + 1])
    with ExitStack() as stack:  # a new process: resumes the open request, redoes nothing
        [resumed] = world.forgetter(stack).resume_open()
    assert resumed.id == interrupted.id
    assert resumed.state == DONE
    assert set(resumed.steps) == set(STEPS)
    # The outcomes recorded before the crash are kept, not recounted as zero.
    assert resumed.steps["event_store"] == {"events": 2, "labels": 1}
    assert resumed.steps["versions"]["versions"][0]["model_version"] == "1"
    assert world.state()["events"] == [("e2", STAYS)]
    assert world.state()["lineage"][GONE] == []


def test_forgetting_again_finds_nothing_and_changes_nothing(world: World) -> None:
    with ExitStack() as stack:
        first = world.forgetter(stack).forget(GONE)
    before = world.state()
    with ExitStack() as stack:
        second = world.forgetter(stack).forget(GONE)
    assert second.id != first.id
    assert second.state == DONE
    assert second.steps["snapshots"]["rows_removed"] == {str(world.csv): 0,
                                                         str(world.jsonl): 0}
    assert second.steps["event_store"] == {"events": 0, "labels": 0}
    assert second.steps["keys"] == {"shredded": False}
    assert second.steps["versions"] == {"versions": []}
    assert world.state() == before


def test_a_snapshot_is_rewritten_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('customer_id,note\nps_a,"x, y"\nps_b,"multi\nline"\n')
    assert purge_snapshot(path, "customer_id", "ps_a") == 1
    assert path.read_text() == 'customer_id,note\nps_b,"multi\nline"\n'
    assert purge_snapshot(path, "customer_id", "ps_a") == 0
    assert purge_snapshot(tmp_path / "missing.csv", "customer_id", "ps_a") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]  # no temporary file left


def test_an_unknown_subject_is_refused_before_anything_is_recorded(world: World) -> None:
    with ExitStack() as stack:
        forgetter = world.forgetter(stack)
        with pytest.raises(Exception, match="NUL"):
            forgetter.forget("ps_\x00")
        assert forgetter.journal.requests() == []


def test_the_audit_record_reports_an_open_request_against_its_deadline(world: World) -> None:
    with ExitStack() as stack:
        journal = stack.enter_context(open_journal(world.url))
        request = journal.open_request(GONE, 0, 30 * 86_400_000)
        assert audit_record(request, at_ms=10 * 86_400_000)["deadline_status"] == \
            "open: 20.0 days left"
        assert audit_record(request, at_ms=31 * 86_400_000)["deadline_status"] == \
            "overdue by 1.0 days"
        assert audit_record(request)["pending"] == list(STEPS)
