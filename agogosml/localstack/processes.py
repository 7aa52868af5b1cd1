"""Running agogosml services and other commands as child processes: start them, wait until
a service is ready, tell whether one has exited, stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from agogosml.services import registry


class ChildProcess:
    """One command as a child process, its output appended to `log_path`; `start` again
    after it exited runs it anew (what a supervisor does)."""

    def __init__(self, label: str, command: Sequence[str], env: Mapping[str, str],
                 log_path: Path) -> None:
        self.label = label
        self.command = list(command)
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def exit_code(self) -> int | None:
        """None while it runs (or before it was started); its exit code once it ended,
        negative for a signal (-9: SIGKILL)."""
        return None if self.process is None else self.process.poll()

    def terminate(self, timeout_s: float = 40.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the crash a graceful shutdown cannot soften."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class ServiceProcess(ChildProcess):
    """`name` is the service to run (a name in agogosml.services.registry); `label` tells
    two instances of the same service apart in messages and log file names."""

    def __init__(self, name: str, port: int, env: Mapping[str, str], log_dir: Path,
                 label: str | None = None) -> None:
        label = label or name
        super().__init__(label, [sys.executable, "-m", registry.get(name).module], env,
                         log_dir / f"{label}.log")
        self.name = name
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until /readyz answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"{self.label} exited ({code}); see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling /readyz until the condition holds
        raise TimeoutError(f"{self.label} not ready after {timeout_s}s; see {self.log_path}")
