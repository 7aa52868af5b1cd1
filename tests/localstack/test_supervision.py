"""The local stack's supervisor against real child processes: one killed with SIGKILL is
reported and restarted; one that keeps dying is given up on while the rest keeps running."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agogosml.localstack.processes import ChildProcess
from agogosml.localstack.supervisor import RestartPolicy, Supervisor
from agogosml.retry import Backoff

FAST = RestartPolicy(max_restarts=2, backoff=Backoff(initial_s=0.05, max_s=0.2))


class Messages:
    """What the supervisor reports, with a wait for a condition on it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[str]], bool], timeout_s: float,
                 what: str) -> list[str]:
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self.lines), timeout_s):
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                     f"reported: {self.lines}")
            return list(self.lines)


def python(label: str, code: str, tmp_path: Path) -> ChildProcess:
    return ChildProcess(label, [sys.executable, "-c", code], {}, tmp_path / f"{label}.log")


@pytest.fixture
def supervise() -> Iterator[Callable[[list[ChildProcess], Messages], Supervisor]]:
    """Starts the children and a supervisor thread; stops both afterwards."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started: list[ChildProcess] = []

    def run(children: list[ChildProcess], messages: Messages) -> Supervisor:
        for child in children:
            child.start()
            started.append(child)
        supervisor = Supervisor(children, FAST, report=messages)
        thread = threading.Thread(target=supervisor.run, args=(stop, 0.05), daemon=True)
        thread.start()
        threads.append(thread)
        return supervisor

    yield run
    stop.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    for child in started:
        child.kill()


def test_a_killed_child_is_reported_and_restarted(
        supervise: Callable[[list[ChildProcess], Messages], Supervisor], tmp_path: Path) -> None:
    victim = python("victim", "import signal; signal.pause()", tmp_path)
    bystander = python("bystander", "import signal; signal.pause()", tmp_path)
    messages = Messages()
    supervise([victim, bystander], messages)
    first_pid, bystander_pid = victim.pid, bystander.pid

    victim.kill()

    lines = messages.wait_for(lambda lines: "victim restarted" in lines, 10, "a restart")
    assert re.fullmatch(
        rf"victim exited with code -9 \(SIGKILL\); see {re.escape(str(victim.log_path))}; "
        r"restarting in 0\.\ds \(restart 1 of 2\)", lines[0]), lines[0]
    assert victim.pid != first_pid
    assert victim.exit_code() is None, "the new process runs"
    assert bystander.pid == bystander_pid
    assert bystander.exit_code() is None
    assert not any("bystander" in line for line in lines)


def test_a_child_that_keeps_dying_is_given_up_on(
        supervise: Callable[[list[ChildProcess], Messages], Supervisor], tmp_path: Path) -> None:
    crasher = python("crasher", "import sys; print('boom', flush=True); sys.exit(3)", tmp_path)
    bystander = python("bystander", "import signal; signal.pause()", tmp_path)
    messages = Messages()
    supervisor = supervise([crasher, bystander], messages)

    lines = messages.wait_for(lambda lines: any("giving up" in line for line in lines), 20,
                              "the supervisor to give up")

    exits = [line for line in lines if line.startswith("crasher exited with code 3; see ")]
    assert [line.rsplit("(", 1)[1] for line in exits[:2]] == ["restart 1 of 2)",
                                                             "restart 2 of 2)"]
    assert lines[-1] == (f"crasher exited with code 3; see {tmp_path / 'crasher.log'}; giving "
                         "up on it after 2 restarts in a row (the rest keeps running)")
    assert lines.count("crasher restarted") == 2
    assert supervisor.given_up() == ["crasher"]
    assert (tmp_path / "crasher.log").read_text().count("boom") == 3, "started 1 + 2 times"
    assert bystander.exit_code() is None, "the rest keeps running"


def test_a_child_that_fails_to_start_counts_against_its_budget(
        supervise: Callable[[list[ChildProcess], Messages], Supervisor], tmp_path: Path) -> None:
    """Like a broker whose restart times out: the failed start is reported and retried."""
    child = python("flaky", "import signal; signal.pause()", tmp_path)
    messages = Messages()
    supervisor = supervise([child], messages)
    child.command = [str(tmp_path / "no-such-program")]  # what its restarts will run
    child.kill()

    lines = messages.wait_for(lambda lines: any("giving up" in line for line in lines), 10,
                              "the supervisor to give up")

    assert lines[0].startswith("flaky exited with code -9 (SIGKILL); see ")
    assert lines[1].startswith("flaky failed to start (FileNotFoundError")
    assert lines[1].endswith("(restart 2 of 2)")
    assert lines[2].startswith("flaky failed to start (FileNotFoundError")
    assert lines[2].endswith("giving up on it after 2 restarts in a row (the rest keeps running)")
    assert supervisor.given_up() == ["flaky"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_child_that_stayed_up_gets_its_budget_back(tmp_path: Path) -> None:
    """Budget and backoff count restarts in a row: a crash after `stable_after_s` of
    running is restart 1 again (a real child, a controlled clock)."""
    clock, messages = Clock(), Messages()
    child = python("steady", "import signal; signal.pause()", tmp_path)
    child.start()
    policy = RestartPolicy(max_restarts=2, backoff=Backoff(initial_s=1.0, max_s=1.0),
                           stable_after_s=60.0)
    supervisor = Supervisor([child], policy, report=messages, clock=clock)
    try:
        for _ in range(2):
            child.kill()
            supervisor.check()
            clock.now += 1.0
            supervisor.check()  # the backoff has passed: restarted
            assert child.exit_code() is None
            clock.now += 60.0
            supervisor.check()  # up for a minute: the count starts over
        assert [line.rsplit("(", 1)[1] for line in messages.lines
                if "exited" in line] == ["restart 1 of 2)", "restart 1 of 2)"]
        assert messages.lines.count("steady restarted") == 2
    finally:
        child.kill()
