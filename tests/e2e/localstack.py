"""`agogosml local-stack` (what `make run` starts) as a test fixture: in its own process
group, on free ports and its own var directory, its output collected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agogosml.localstack.broker import free_port
from agogosml.services.registry import SERVICES


class LocalStack:
    """`agogosml local-stack` in its own process group, its output collected."""

    def __init__(self, var: Path, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agogosml.cli", "local-stack"], env=env, cwd=var,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_running(self, timeout_s: float) -> None:
        wait_until(lambda: any("agogosml is running" in line for line in self.output)
                   or self.process.poll() is not None, timeout_s, "the stack to start")
        assert self.process.poll() is None, "".join(self.output[-40:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)  # polling the stack until the condition holds


@contextmanager
def local_stack(root: Path, **env: str) -> Iterator[dict[str, str]]:
    """A running stack under `root` (its var directory is root/var); yields its ports by
    variable (each service's, AGOGOSML_KAFKA_PORT, AGOGOSML_RETRAIN_PORT)."""
    ports = {service.port_variable: str(free_port()) for service in SERVICES}
    ports.update(AGOGOSML_KAFKA_PORT=str(free_port()),
                 AGOGOSML_KAFKA_CONTROLLER_PORT=str(free_port()),
                 AGOGOSML_RETRAIN_PORT=str(free_port()))
    local = LocalStack(root, {**os.environ, **ports, "AGOGOSML_VAR_DIR": str(root / "var"),
                              **env})
    try:
        local.wait_running(240)
        yield ports
    finally:
        local.stop()
