"""The audit record of an erasure request, as the CLI prints it and the endpoint answers.

It holds the pseudonym (never the person's identity), when the request came and its
deadline, each finished step with its time and outcome (what was purged, which key was
shredded, which versions were retired and which version replaced them), and the deadline
status: GDPR gives one month.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agogosml.privacy.forget.journal import DONE, Request
from agogosml.privacy.forget.process import DAY_MS, STEPS
from agogosml.sqldb.database import now_ms


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def deadline_status(request: Request, at_ms: int | None = None) -> str:
    now = now_ms() if at_ms is None else at_ms
    if request.state == DONE and request.finished_at_ms is not None:
        met = request.finished_at_ms <= request.deadline_ms
        took = (request.finished_at_ms - request.requested_at_ms) / DAY_MS
        return f"{'met' if met else 'missed'}: done in {took:.2f} days of 30"
    left = (request.deadline_ms - now) / DAY_MS
    if left < 0:
        return f"overdue by {-left:.1f} days"
    return f"open: {left:.1f} days left"


def audit_record(request: Request, at_ms: int | None = None) -> dict[str, Any]:
    retrain = request.steps.get("retrain", {})
    tainted = request.steps.get("versions", {}).get("versions", [])
    return {
        "request_id": request.id,
        "subject": request.subject,
        "state": request.state,
        "note": request.note,
        "requested_at": iso(request.requested_at_ms),
        "deadline": iso(request.deadline_ms),
        "deadline_status": deadline_status(request, at_ms),
        "finished_at": None if request.finished_at_ms is None else iso(request.finished_at_ms),
        "replaced": {
            "tainted_versions": [f"{use['model_name']}/{use['model_version']}"
                                 for use in tainted],
            "by": retrain.get("version"),
        },
        "steps": [{"step": step, "done_at": iso(request.done_at_ms[step]),
                   "outcome": request.steps[step]}
                  for step in STEPS if step in request.steps],
        "pending": [step for step in STEPS if step not in request.steps],
    }
