"""Shared pieces of the triggers' tests: a clock the test moves, a real SQLite event store,
and a real HTTP server that records what the actions send it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from agogosml.monitor.store import SqliteEventStore
from agogosml.monitor.store.base import AsyncEventStore
from agogosml.monitor.triggers.rules import RuleSet
from tests.servers import run_server

START = 1_750_000_000.0
"""Seconds since the epoch at which the tests' clocks start."""


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteEventStore]:
    store = SqliteEventStore(tmp_path / "monitor.db")
    yield store
    store.close()


@pytest.fixture
def event_store(sqlite_store: SqliteEventStore) -> AsyncEventStore:
    return AsyncEventStore(sqlite_store)


def metric_rule(name: str = "psi-high", /, **fields: Any) -> dict[str, Any]:
    """A valid metric rule as the file spells it; `fields` replace its values."""
    rule: dict[str, Any] = {"name": name, "metric": "drift_psi{feature=amount}",
                            "comparison": ">", "threshold": 0.2, "window": 60, "for": 0,
                            "cool_down": 600, "action": {"type": "notify"}}
    return {**rule, **fields}


def alert_rule(name: str = "drift-page", /, **fields: Any) -> dict[str, Any]:
    return {"name": name, "alertname": "AgogosmlDriftHigh", "cool_down": 600,
            "action": {"type": "notify"}, **fields}


def rules(*metric: dict[str, Any], alerts: tuple[dict[str, Any], ...] = ()) -> RuleSet:
    return RuleSet.model_validate({"rules": list(metric), "alerts": list(alerts)})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """What the recording server was sent, and how it answers: `status` with `answer`, or
    never (until the test ends) while `hang` is set."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    answer: Any = field(default_factory=dict)
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout_s)
        return self.received


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)  # polling state another thread changes


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    app = FastAPI()
    state: list[Recorder] = []

    @app.post("/{path:path}")
    async def record(path: str, request: Request) -> JSONResponse:
        target = state[0]
        target.received.append(Received("/" + path, dict(request.headers),
                                         await request.json()))
        while target.hang and not target.release.is_set():
            await asyncio.to_thread(target.release.wait, 0.1)
        return JSONResponse(target.answer, status_code=target.status)

    with run_server(app) as url:
        state.append(Recorder(url))
        yield state[0]
        state[0].release.set()
