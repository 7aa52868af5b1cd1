"""The forget journal: each erasure request, the steps it has finished with their outcomes,
and its state. It is what makes `forget` resumable (a step done is never redone) and what the
audit record is read from.

It may share a database with the lineage index and the event store: its tables are prefixed
`forget_` and its versions live in `forget_schema_version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agogosml.sqldb.database import Connection, SqlDatabase, now_ms
from agogosml.sqldb.schema import Migration, Schema
from agogosml.sqldb.urls import connect

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "erasure requests and their finished steps", (
        """CREATE TABLE forget_requests (
            id {id},
            subject TEXT NOT NULL,
            requested_at_ms BIGINT NOT NULL,
            deadline_ms BIGINT NOT NULL,
            state TEXT NOT NULL,
            finished_at_ms BIGINT,
            note TEXT NOT NULL)""",
        "CREATE INDEX forget_requests_by_subject ON forget_requests (subject, state)",
        """CREATE TABLE forget_steps (
            request_id BIGINT NOT NULL REFERENCES forget_requests (id),
            step TEXT NOT NULL,
            done_at_ms BIGINT NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (request_id, step))""",
    )),
)
SCHEMA = Schema("the forget journal", "forget_schema_version", MIGRATIONS)

OPEN, BLOCKED, DONE = "open", "blocked", "done"


@dataclass(frozen=True)
class Request:
    id: int
    subject: str
    requested_at_ms: int
    deadline_ms: int
    state: str
    finished_at_ms: int | None
    note: str
    steps: dict[str, dict[str, Any]]
    """Step name -> its outcome, for the steps finished so far."""
    done_at_ms: dict[str, int]


class ForgetJournal(SqlDatabase):
    schema = SCHEMA

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)

    def open_request(self, subject: str, requested_at_ms: int, deadline_ms: int) -> Request:
        """The subject's unfinished request (open or blocked), or a new one: asking twice
        resumes the first request rather than starting a second."""
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "SELECT id FROM forget_requests WHERE subject = ? AND state <> ? "
                "ORDER BY id LIMIT 1"), (subject, DONE))
            row = cursor.fetchone()
            if row is None:
                cursor.execute(self._sql(
                    "INSERT INTO forget_requests (subject, requested_at_ms, deadline_ms, "
                    "state, note) VALUES (?, ?, ?, ?, '') RETURNING id"),
                    (subject, requested_at_ms, deadline_ms, OPEN))
                row = cursor.fetchone()
        request = self.request(int(row[0]))
        assert request is not None
        return request

    def finish_step(self, request_id: int, step: str, outcome: dict[str, Any]) -> None:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "INSERT INTO forget_steps (request_id, step, done_at_ms, outcome) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                (request_id, step, now_ms(), orjson.dumps(outcome).decode()))

    def set_state(self, request_id: int, state: str, note: str = "") -> None:
        finished = now_ms() if state == DONE else None
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "UPDATE forget_requests SET state = ?, note = ?, finished_at_ms = ? "
                "WHERE id = ?"), (state, note, finished, request_id))

    def request(self, request_id: int) -> Request | None:
        rows = self._query(
            "SELECT id, subject, requested_at_ms, deadline_ms, state, finished_at_ms, note "
            "FROM forget_requests WHERE id = ?", (request_id,))
        if not rows:
            return None
        id_, subject, requested, deadline, state, finished, note = rows[0]
        steps = self._query("SELECT step, done_at_ms, outcome FROM forget_steps "
                            "WHERE request_id = ? ORDER BY done_at_ms, step", (request_id,))
        return Request(int(id_), subject, int(requested), int(deadline), state,
                       None if finished is None else int(finished), note,
                       {step: orjson.loads(outcome) for step, _, outcome in steps},
                       {step: int(at) for step, at, _ in steps})

    def requests(self, subject: str | None = None, limit: int = 100) -> list[Request]:
        where, params = ("WHERE subject = ? ", [subject]) if subject is not None else ("", [])
        rows = self._query(f"SELECT id FROM forget_requests {where}"  # noqa: S608
                           "ORDER BY id DESC LIMIT ?", [*params, limit])
        found = (self.request(int(row[0])) for row in rows)
        return [request for request in found if request is not None]

    def __enter__(self) -> ForgetJournal:
        return self


def open_journal(url: str) -> ForgetJournal:
    return ForgetJournal(connect(url, foreign_keys=True))
