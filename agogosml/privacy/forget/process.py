"""Forgetting a data subject, as a sequence of steps recorded in the journal.

    versions     which model versions used the subject (from the lineage index, kept in the
                 journal: the last step removes the subject from the index)
    snapshots    their rows removed from the training snapshots
    event_store  their events and labels removed from the monitor's store
    keys         their data key shredded: encrypted fields and sealed dead letters of theirs
                 can no longer be read, wherever copies of them are
    retrain      the model retrained without them (only the shards that held them, when the
                 model is sharded), gated and registered as challenger
    promote      the retrained version made champion
    retire       the tainted versions' artifacts deleted, their aliases removed
    lineage      the subject's rows removed from the lineage index

Each step is idempotent and recorded with its outcome once done; a request interrupted at any
point (a crash, a restart) resumes at the first step not recorded. A gate that refuses the
retrained model blocks the request (the tainted champion stays until someone acts) rather
than promoting a worse model or keeping a tainted one silently: the audit record says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agogosml.monitor.store.base import EventStore
from agogosml.privacy.errors import PrivacyError
from agogosml.privacy.forget.datasets import purge_snapshot
from agogosml.privacy.forget.journal import BLOCKED, DONE, OPEN, ForgetJournal, Request
from agogosml.privacy.lineage.index import LineageIndex
from agogosml.privacy.lineage.subjects import check_subject
from agogosml.sqldb.database import now_ms

log = logging.getLogger(__name__)

STEPS = ("versions", "snapshots", "event_store", "keys", "retrain", "promote", "retire",
         "lineage")
DEADLINE_DAYS = 30
"""GDPR Art. 12(3): a request is answered without undue delay, within one month."""
DAY_MS = 86_400_000


class ForgetBlockedError(PrivacyError):
    """A step cannot finish now (the retrained model failed its gate, a retrain is running);
    the request stays open at that step and resumes when `forget` is called again."""


class SubjectKeys(Protocol):
    def shred(self, subject: str) -> bool: ...


class Models(Protocol):
    """The model registry's side of a forget (agogosml.privacy.forget.models on MLflow)."""

    def retrain(self, tainted: Sequence[dict[str, str]]) -> dict[str, Any]:
        """Retrain without the subject (whose rows are already gone from the snapshots),
        gate and register; ForgetBlockedError if the gate refuses."""
        ...

    def promote(self, version: str) -> dict[str, Any]: ...

    def retire(self, tainted: Sequence[dict[str, str]], keep: str | None) -> dict[str, Any]: ...


@dataclass
class Forgetter:
    journal: ForgetJournal
    lineage: LineageIndex
    snapshots: Sequence[Path] = ()
    subject_column: str = "customer_id"
    events: EventStore | None = None
    keys: SubjectKeys | None = None
    models: Models | None = None
    after_step: Callable[[str], None] = field(default=lambda step: None)
    """Called after each step is recorded; tests crash the process here."""

    def forget(self, subject: str) -> Request:
        """Runs (or resumes) the subject's request to its end; returns it as recorded.
        A blocked request is returned with state `blocked` and the reason in `note`."""
        subject = check_subject(subject)
        now = now_ms()
        request = self.journal.open_request(subject, now, now + DEADLINE_DAYS * DAY_MS)
        for step in STEPS:
            if step in request.steps:
                continue
            try:
                outcome = self._run(step, subject, request)
            except ForgetBlockedError as blocked:
                self.journal.set_state(request.id, BLOCKED, f"{step}: {blocked}")
                log.warning("erasure blocked", extra={"request": request.id, "step": step})
                return self._reload(request.id)
            self.journal.finish_step(request.id, step, outcome)
            request = self._reload(request.id)
            self.after_step(step)
        self.journal.set_state(request.id, DONE)
        log.info("erasure done", extra={"request": request.id})
        return self._reload(request.id)

    def resume_open(self) -> list[Request]:
        """Finishes the requests a crash or a restart left open (not the blocked ones,
        which wait for someone to act); returns them as they ended."""
        return [self.forget(request.subject) for request in self.journal.requests(limit=1_000)
                if request.state == OPEN]

    def _reload(self, request_id: int) -> Request:
        request = self.journal.request(request_id)
        assert request is not None
        return request

    def _run(self, step: str, subject: str, request: Request) -> dict[str, Any]:
        tainted: list[dict[str, str]] = request.steps.get("versions", {}).get("versions", [])
        if step == "versions":
            return {"versions": [use._asdict() for use in self.lineage.versions_for(subject)]}
        if step == "snapshots":
            return {"rows_removed": {str(path): purge_snapshot(path, self.subject_column,
                                                               subject)
                                     for path in self.snapshots}}
        if step == "event_store":
            if self.events is None:
                return {"skipped": "no event store configured"}
            erased = self.events.forget_subject(subject)
            return {"events": erased.events, "labels": erased.labels}
        if step == "keys":
            if self.keys is None:
                return {"skipped": "no subject key store configured"}
            return {"shredded": self.keys.shred(subject)}
        if step == "retrain":
            if not tainted or self.models is None:
                return {"skipped": "no registered model version used the subject"
                        if not tainted else "no model registry configured"}
            return self.models.retrain(tainted)
        if step == "promote":
            version = request.steps["retrain"].get("version")
            if self.models is None or version is None:
                return {"skipped": "nothing was retrained"}
            return self.models.promote(str(version))
        if step == "retire":
            if not tainted or self.models is None:
                return {"retired": []}
            keep = request.steps["retrain"].get("version")
            return self.models.retire(tainted, None if keep is None else str(keep))
        assert step == "lineage"
        return {"rows": self.lineage.forget_subject(subject)}
