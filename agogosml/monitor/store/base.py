"""The event store's interface and its SQL implementation shared by both backends.

`EventStore` is what the monitor (and a fake in its tests) programs against. `SqlEventStore`
implements it once over a DB-API connection; a backend only says how to connect, how to run a
write transaction and how it spells parameters. Every method is synchronous and serialised
by a lock, so one store can be shared between threads; `AsyncEventStore` runs each call in a
worker thread (`asyncio.to_thread`) to keep the event loop free.

Retention: events older than `Retention.raw_ms` are folded by `compact(now_ms)` into rollups
of `Retention.window_ms` (per window, model name/version and prediction: the count and, per
numeric score, its sum and how many events had it) and deleted. `counts()` reads raw events
and rollups together, so history stays countable at window precision after compaction.
A redelivery of an event after it was compacted is stored again: keep the raw retention
longer than the pipeline's redelivery horizon (hours, not days).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import orjson

from agogosml.monitor.store.migrations import SCHEMA
from agogosml.sqldb.database import Connection, SqlDatabase

Json: TypeAlias = Any
"""A JSON value: None, bool, int (64-bit), float (finite), str, list or dict with str keys."""


def dumps(value: Json) -> str:
    """Compact JSON with sorted keys: equal values give equal text, so filters can match."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: str) -> Json:
    return orjson.loads(text)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ScoredEvent:
    """One event scored by one model version, as the monitor stores it."""

    event_id: str
    subject: str | None
    event_time_ms: int
    scored_at_ms: int
    model_name: str
    model_version: str
    prediction: Json
    scores: Json
    features: Json
    ingested_at_ms: int


def unstorable(event: ScoredEvent) -> str | None:
    """Why no backend can hold `event`, or None. PostgreSQL text cannot hold NUL, so an id,
    subject or model name with one is refused everywhere, and retrying would never help."""
    for name in ("event_id", "subject", "model_name", "model_version"):
        value = getattr(event, name)
        if value is not None and "\x00" in value:
            return f"{name} holds a NUL character"
    return None


@dataclass(frozen=True)
class Label:
    """Ground truth for an event, arriving late; joined to predictions by event id."""

    event_id: str
    label: Json
    arrived_at_ms: int


@dataclass(frozen=True)
class Firing:
    """One action a trigger rule took, with the evidence it acted on."""

    rule: str
    fired_at_ms: int
    evidence: Json
    action: str
    outcome: str
    id: int | None = None


@dataclass(frozen=True)
class Page:
    """Events in (event time, event id, model version) order; `cursor` fetches the next page
    (None: this was the last)."""

    events: list[ScoredEvent]
    cursor: str | None


@dataclass(frozen=True)
class WindowCount:
    window_start_ms: int
    model_version: str
    prediction: Json
    count: int


@dataclass(frozen=True)
class Rollup:
    window_start_ms: int
    window_ms: int
    model_name: str
    model_version: str
    prediction: Json
    count: int
    mean_scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelledPrediction:
    event: ScoredEvent
    label: Json
    label_arrived_at_ms: int


@dataclass(frozen=True)
class Retention:
    """Keep raw events `raw_ms` (default 7 days); fold older ones into `window_ms` rollups
    (default 1 minute)."""

    raw_ms: int = 7 * 24 * 3_600_000
    window_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.raw_ms < 0 or self.window_ms <= 0:
            raise ValueError(f"retention needs raw_ms >= 0 and window_ms > 0: {self}")


@dataclass(frozen=True)
class Erased:
    """What `forget_subject` deleted."""

    events: int
    labels: int


class EventStore(Protocol):
    """What the monitor needs from its store. Times are milliseconds since the epoch; ranges
    are half-open, [start_ms, end_ms)."""

    def schema_version(self) -> int: ...

    def insert_events(self, events: Sequence[ScoredEvent]) -> int:
        """Stores the events in one transaction; returns how many were new (a repeated event
        id and model version is ignored)."""
        ...

    def events(self, start_ms: int, end_ms: int, *, model_version: str | None = None,
               prediction: Json = None, limit: int = 100, cursor: str | None = None) -> Page: ...

    def counts(self, start_ms: int, end_ms: int, window_ms: int, *,
               model_version: str | None = None) -> list[WindowCount]: ...

    def rollups(self, start_ms: int, end_ms: int, *,
                model_version: str | None = None) -> list[Rollup]: ...

    def add_labels(self, labels: Sequence[Label]) -> None: ...

    def labelled(self, model_version: str, start_ms: int, end_ms: int,
                 limit: int | None = None) -> list[LabelledPrediction]:
        """The version's labelled predictions in the range, in event time order; with a
        limit, the latest `limit` of them."""
        ...

    def record_firing(self, firing: Firing) -> int: ...

    def firings(self, start_ms: int, end_ms: int, *, rule: str | None = None) -> list[Firing]: ...

    def compact(self, now_ms: int) -> int: ...

    def forget_subject(self, subject: str) -> Erased:
        """Deletes the subject's events and their labels (GDPR erasure)."""
        ...

    def close(self) -> None: ...


EVENT_COLUMNS = ("event_id, subject, event_time_ms, scored_at_ms, model_name, model_version, "
                 "prediction, scores, features, ingested_at_ms")
INSERT_EVENT = (f"INSERT INTO events ({EVENT_COLUMNS}) "  # noqa: S608 - constants
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id, model_version) DO NOTHING")


def _event_row(event: ScoredEvent) -> tuple[Any, ...]:
    return (event.event_id, event.subject, event.event_time_ms, event.scored_at_ms,
            event.model_name, event.model_version, dumps(event.prediction),
            dumps(event.scores), dumps(event.features), event.ingested_at_ms)


def _event(row: Sequence[Any]) -> ScoredEvent:
    return ScoredEvent(row[0], row[1], int(row[2]), int(row[3]), row[4], row[5], loads(row[6]),
                       loads(row[7]), loads(row[8]), int(row[9]))


def numeric_scores(scores: Json) -> dict[str, float]:
    """The scores a rollup averages: a dict's numeric values, or a list's by position."""
    items = (scores.items() if isinstance(scores, dict)
             else ((str(i), v) for i, v in enumerate(scores)) if isinstance(scores, list)
             else ())
    return {str(k): float(v) for k, v in items
            if isinstance(v, int | float) and not isinstance(v, bool)}


class SqlEventStore(SqlDatabase):
    """`EventStore` over one backend connection (see agogosml.sqldb)."""

    schema = SCHEMA

    def __init__(self, connection: Connection, retention: Retention | None = None,
                 schema_version: int | None = None) -> None:
        self.retention = retention or Retention()
        super().__init__(connection, schema_version)

    def insert_events(self, events: Sequence[ScoredEvent]) -> int:
        if not events:
            return 0
        rows = [_event_row(e) for e in events]
        with self._lock, self._transaction() as cursor:
            cursor.executemany(self._sql(INSERT_EVENT), rows)
            return int(cursor.rowcount)

    def events(self, start_ms: int, end_ms: int, *, model_version: str | None = None,
               prediction: Json = None, limit: int = 100, cursor: str | None = None) -> Page:
        if limit <= 0:
            raise ValueError(f"limit must be positive: {limit}")
        where = ["event_time_ms >= ?", "event_time_ms < ?"]
        params: list[Any] = [start_ms, end_ms]
        if model_version is not None:
            where.append("model_version = ?")
            params.append(model_version)
        if prediction is not None:
            where.append("prediction = ?")
            params.append(dumps(prediction))
        if cursor is not None:
            after = loads(cursor)
            where.append("(event_time_ms, event_id, model_version) > (?, ?, ?)")
            params.extend(after)
        rows = self._query(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY event_time_ms, event_id, model_version LIMIT ?", [*params, limit + 1])
        events = [_event(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = events[-1] if events else None
        next_cursor = (dumps([last.event_time_ms, last.event_id, last.model_version])
                       if more and last else None)
        return Page(events, next_cursor)

    def counts(self, start_ms: int, end_ms: int, window_ms: int, *,
               model_version: str | None = None) -> list[WindowCount]:
        """Events per window (aligned to multiples of `window_ms`), model version and
        prediction, from raw events and rollups. Rollups count at their own window's
        precision: `window_ms` must be a multiple of the rollup window."""
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive: {window_ms}")
        where = "event_time_ms >= ? AND event_time_ms < ?"
        params: list[Any] = [start_ms, end_ms]
        if model_version is not None:
            where += " AND model_version = ?"
            params.append(model_version)
        totals: dict[tuple[int, str, str], int] = {}
        raw = self._query(
            f"SELECT (event_time_ms / ?) * ?, model_version, prediction, COUNT(*) "  # noqa: S608
            f"FROM events WHERE {where} GROUP BY 1, 2, 3", [window_ms, window_ms, *params])
        for start, version, prediction, count in raw:
            key = (int(start), version, prediction)
            totals[key] = totals.get(key, 0) + int(count)
        rolled = self._query(
            "SELECT window_ms, window_start_ms, model_version, prediction, count "
            "FROM rollups WHERE " + where.replace("event_time_ms", "window_start_ms"), params)
        for rollup_window, start, version, prediction, count in rolled:
            if window_ms % int(rollup_window):
                raise ValueError(f"window_ms {window_ms} is not a multiple of the rollups' "
                                 f"window {rollup_window}")
            key = (int(start) // window_ms * window_ms, version, prediction)
            totals[key] = totals.get(key, 0) + int(count)
        return [WindowCount(start, version, loads(prediction), count)
                for (start, version, prediction), count in sorted(totals.items())]

    def rollups(self, start_ms: int, end_ms: int, *,
                model_version: str | None = None) -> list[Rollup]:
        where = "window_start_ms >= ? AND window_start_ms < ?"
        params: list[Any] = [start_ms, end_ms]
        if model_version is not None:
            where += " AND model_version = ?"
            params.append(model_version)
        rows = self._query(
            "SELECT window_start_ms, window_ms, model_name, model_version, "  # noqa: S608
            f"prediction, count, score_sums FROM rollups WHERE {where} "
            "ORDER BY window_start_ms, model_name, model_version, prediction", params)
        return [Rollup(int(start), int(window), name, version, loads(prediction), int(count),
                       {k: total / n for k, (total, n) in loads(sums).items()})
                for start, window, name, version, prediction, count, sums in rows]

    def compact(self, now_ms: int) -> int:
        """Folds raw events older than the retention (cut at a window boundary) into rollups
        and deletes them, with the labels of deleted events; returns how many were folded."""
        window = self.retention.window_ms
        cutoff = (now_ms - self.retention.raw_ms) // window * window
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "SELECT event_time_ms, model_name, model_version, prediction, scores "
                "FROM events WHERE event_time_ms < ?"), (cutoff,))
            folded: dict[tuple[int, str, str, str], tuple[int, dict[str, list[float]]]] = {}
            total = 0
            for time_ms, name, version, prediction, scores in cursor:  # streamed by SQLite
                total += 1
                key = (int(time_ms) // window * window, name, version, prediction)
                count, sums = folded.get(key, (0, {}))
                for score, value in numeric_scores(loads(scores)).items():
                    entry = sums.setdefault(score, [0.0, 0])
                    entry[0] += value
                    entry[1] += 1
                folded[key] = (count + 1, sums)
            for (start, name, version, prediction), (count, sums) in folded.items():
                params = (window, start, name, version, prediction)
                cursor.execute(self._sql(
                    "SELECT count, score_sums FROM rollups WHERE window_ms = ? AND "
                    "window_start_ms = ? AND model_name = ? AND model_version = ? AND "
                    "prediction = ?"), params)
                existing = cursor.fetchone()
                if existing is not None:
                    count += int(existing[0])
                    for score, (value, n) in loads(existing[1]).items():
                        entry = sums.setdefault(score, [0.0, 0])
                        entry[0] += value
                        entry[1] += n
                cursor.execute(self._sql(
                    "INSERT INTO rollups (window_ms, window_start_ms, model_name, model_version,"
                    " prediction, count, score_sums) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                    "(window_ms, window_start_ms, model_name, model_version, prediction) DO "
                    "UPDATE SET count = excluded.count, score_sums = excluded.score_sums"),
                    (*params, count, dumps(sums)))
            cursor.execute(self._sql("DELETE FROM events WHERE event_time_ms < ?"), (cutoff,))
            cursor.execute(self._sql(
                "DELETE FROM labels WHERE arrived_at_ms < ? AND NOT EXISTS "
                "(SELECT 1 FROM events WHERE events.event_id = labels.event_id)"), (cutoff,))
            return total

    def add_labels(self, labels: Sequence[Label]) -> None:
        """Stores labels; a later label for the same event replaces the earlier one."""
        if not labels:
            return
        with self._lock, self._transaction() as cursor:
            cursor.executemany(self._sql(
                "INSERT INTO labels (event_id, label, arrived_at_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET label = excluded.label, "
                "arrived_at_ms = excluded.arrived_at_ms"),
                [(x.event_id, dumps(x.label), x.arrived_at_ms) for x in labels])

    def labelled(self, model_version: str, start_ms: int, end_ms: int,
                 limit: int | None = None) -> list[LabelledPrediction]:
        """The version's predictions in the window that have a label, in event time order
        (with a limit: the latest `limit`)."""
        columns = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
        bounded = " LIMIT ?" if limit is not None else ""
        rows = self._query(
            f"SELECT {columns}, l.label, l.arrived_at_ms FROM events e "  # noqa: S608
            "JOIN labels l ON l.event_id = e.event_id WHERE e.model_version = ? AND "
            "e.event_time_ms >= ? AND e.event_time_ms < ? "
            f"ORDER BY e.event_time_ms DESC, e.event_id DESC{bounded}",
            [model_version, start_ms, end_ms, *([] if limit is None else [limit])])
        return [LabelledPrediction(_event(row[:10]), loads(row[10]), int(row[11]))
                for row in reversed(rows)]

    def forget_subject(self, subject: str) -> Erased:
        """Rollups keep no subject and stay. A label is deleted with the subject's last
        event of that id (an event id is one person's)."""
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "DELETE FROM labels WHERE event_id IN "
                "(SELECT event_id FROM events WHERE subject = ?)"), (subject,))
            labels = cursor.rowcount
            cursor.execute(self._sql("DELETE FROM events WHERE subject = ?"), (subject,))
            return Erased(events=cursor.rowcount, labels=labels)

    def record_firing(self, firing: Firing) -> int:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "INSERT INTO firings (rule, fired_at_ms, evidence, action, outcome) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id"),
                (firing.rule, firing.fired_at_ms, dumps(firing.evidence), firing.action,
                 firing.outcome))
            return int(cursor.fetchone()[0])

    def firings(self, start_ms: int, end_ms: int, *, rule: str | None = None) -> list[Firing]:
        where = "fired_at_ms >= ? AND fired_at_ms < ?"
        params: list[Any] = [start_ms, end_ms]
        if rule is not None:
            where += " AND rule = ?"
            params.append(rule)
        rows = self._query(
            "SELECT id, rule, fired_at_ms, evidence, action, outcome "  # noqa: S608
            f"FROM firings WHERE {where} ORDER BY fired_at_ms, id", params)
        return [Firing(rule, int(at), loads(evidence), action, outcome, int(id_))
                for id_, rule, at, evidence, action, outcome in rows]


class AsyncEventStore:
    """An `EventStore` for the event loop: every call runs in a worker thread."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def schema_version(self) -> int:
        return await asyncio.to_thread(self.store.schema_version)

    async def insert_events(self, events: Sequence[ScoredEvent]) -> int:
        return await asyncio.to_thread(self.store.insert_events, events)

    async def events(self, start_ms: int, end_ms: int, *, model_version: str | None = None,
                     prediction: Json = None, limit: int = 100,
                     cursor: str | None = None) -> Page:
        return await asyncio.to_thread(
            lambda: self.store.events(start_ms, end_ms, model_version=model_version,
                                      prediction=prediction, limit=limit, cursor=cursor))

    async def counts(self, start_ms: int, end_ms: int, window_ms: int, *,
                     model_version: str | None = None) -> list[WindowCount]:
        return await asyncio.to_thread(
            lambda: self.store.counts(start_ms, end_ms, window_ms, model_version=model_version))

    async def rollups(self, start_ms: int, end_ms: int, *,
                      model_version: str | None = None) -> list[Rollup]:
        return await asyncio.to_thread(
            lambda: self.store.rollups(start_ms, end_ms, model_version=model_version))

    async def firings(self, start_ms: int, end_ms: int, *,
                      rule: str | None = None) -> list[Firing]:
        return await asyncio.to_thread(
            lambda: self.store.firings(start_ms, end_ms, rule=rule))

    async def add_labels(self, labels: Sequence[Label]) -> None:
        await asyncio.to_thread(self.store.add_labels, labels)

    async def labelled(self, model_version: str, start_ms: int, end_ms: int,
                       limit: int | None = None) -> list[LabelledPrediction]:
        return await asyncio.to_thread(self.store.labelled, model_version, start_ms, end_ms,
                                       limit)

    async def record_firing(self, firing: Firing) -> int:
        return await asyncio.to_thread(self.store.record_firing, firing)

    async def forget_subject(self, subject: str) -> Erased:
        return await asyncio.to_thread(self.store.forget_subject, subject)

    async def compact(self, now_ms: int) -> int:
        return await asyncio.to_thread(self.store.compact, now_ms)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)

