"""Watching the local stack's child processes and restarting the ones that die.

Every `interval_s` the supervisor asks each child whether it has exited. One that has
is reported (label, exit code, log file) and started again after a backoff that doubles
with each restart in a row; after `max_restarts` in a row it is given up on and the
rest keeps running. A child that stays up for `stable_after_s` has its count reset, so
a crash once an hour never exhausts the budget while a crash loop does, quickly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agogosml.retry import Backoff

Report = Callable[[str], None]


class Child(Protocol):
    """What the supervisor needs of a child: ChildProcess and ServiceProcess have it."""

    @property
    def label(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    def start(self) -> None: ...

    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it ended."""
        ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 5
    """Restarts in a row before the supervisor gives up on a child."""
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=1.0, max_s=30.0))
    """Wait before restart n: up to initial_s * 2**(n-1), capped at max_s, jittered."""
    stable_after_s: float = 60.0
    """A child up this long since its last start has its restart count reset."""


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exited with code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


@dataclass
class _Watch:
    child: Child
    started_at: float
    restarts: int = 0
    restart_at: float | None = None
    gave_up: bool = False


def _print(message: str) -> None:
    print(message, flush=True)


class Supervisor:
    """Supervises children that are already started. `check` is one pass and never
    blocks, except while a child's own `start` does (a broker's waits until it answers)."""

    def __init__(self, children: Sequence[Child], policy: RestartPolicy | None = None,
                 report: Report = _print, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or RestartPolicy()
        self.report = report
        self.clock = clock
        now = clock()
        self._watches = [_Watch(child, now) for child in children]

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Check every `interval_s` until `stop` is set."""
        while not stop.wait(interval_s):
            self.check()

    def given_up(self) -> list[str]:
        return [watch.child.label for watch in self._watches if watch.gave_up]

    def check(self) -> None:
        for watch in self._watches:
            if watch.gave_up:
                continue
            if watch.restart_at is not None:
                if self.clock() >= watch.restart_at:
                    self._restart(watch)
                continue
            code = watch.child.exit_code()
            if code is None:
                if watch.restarts and self.clock() - watch.started_at >= \
                        self.policy.stable_after_s:
                    watch.restarts = 0
                continue
            self._exited(watch, describe_exit(code))

    def _exited(self, watch: _Watch, what: str) -> None:
        child, budget = watch.child, self.policy.max_restarts
        if watch.restarts >= budget:
            watch.gave_up = True
            self.report(f"{child.label} {what}; see {child.log_path}; giving up on it after "
                        f"{budget} restarts in a row (the rest keeps running)")
            return
        delay = self.policy.backoff.delay(watch.restarts)
        watch.restarts += 1
        watch.restart_at = self.clock() + delay
        self.report(f"{child.label} {what}; see {child.log_path}; restarting in {delay:.1f}s "
                    f"(restart {watch.restarts} of {budget})")

    def _restart(self, watch: _Watch) -> None:
        watch.restart_at = None
        watch.started_at = self.clock()
        try:
            watch.child.start()
        except Exception as error:  # whatever stops a start counts as an exit
            self._exited(watch, f"failed to start ({type(error).__name__}: {error})")
            return
        self.report(f"{watch.child.label} restarted")
