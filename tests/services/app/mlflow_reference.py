"""MLflow's own scoring server (`mlflow models serve`) as a reference to compare the app
with, and the comparison of two answers."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from agogosml.localstack.broker import free_port

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
TOLERANCE = 1e-12
"""How far a prediction of the app may be from MLflow's."""


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.1)  # polling the condition


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def mlflow_scoring_server(model_uri: str, tracking_uri: str, log_path: Path) -> Iterator[str]:
    """`mlflow models serve` (the CLI of this environment, serving in it: `--env-manager
    local`) on a free loopback port; yields its base URL once GET /ping answers 200.

    The CLI runs the scoring server (uvicorn) as its child, so both are started in a
    process group of their own and stopped together; the group is gone on return."""
    bin_dir = Path(sys.executable).parent
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "MLFLOW_REGISTRY_URI": tracking_uri,
           # The CLI starts `uvicorn` by name: it must find this environment's.
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"`mlflow models serve` exited with {process.returncode}:\n"
                               f"{log_tail()}")
        try:
            return httpx.get(f"{url}/ping", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        try:
            wait_until(ready, START_TIMEOUT_S, "`mlflow models serve` answering /ping")
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{log_tail()}") from None
        yield url
    finally:
        group = process.pid  # start_new_session: the CLI leads its own group
        if _group_alive(group):
            os.killpg(group, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
            wait_until(lambda: not _group_alive(group), STOP_TIMEOUT_S,
                       "the MLflow scoring server stopping")
        except (subprocess.TimeoutExpired, TimeoutError):
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)


def differences(app: Any, reference: Any, path: str = "$") -> list[str]:
    """Where two decoded JSON documents differ: the same structure, strings, booleans and
    integers equal, other numbers within TOLERANCE (NaN equals NaN)."""
    if isinstance(reference, dict):
        if not isinstance(app, dict) or set(app) != set(reference):
            return [f"{path}: {_brief(app)} != {_brief(reference)}"]
        return [d for key in reference for d in differences(app[key], reference[key],
                                                            f"{path}.{key}")]
    if isinstance(reference, list):
        if not isinstance(app, list) or len(app) != len(reference):
            return [f"{path}: {_brief(app)} != {_brief(reference)}"]
        return [d for i, (a, r) in enumerate(zip(app, reference, strict=True))
                for d in differences(a, r, f"{path}[{i}]")]
    if isinstance(reference, float) and isinstance(app, int | float) \
            and not isinstance(app, bool):
        same = (math.isnan(reference) and math.isnan(app)) \
            or math.isclose(app, reference, rel_tol=0, abs_tol=TOLERANCE)
        return [] if same else [f"{path}: {app!r} != {reference!r}"]
    if type(app) is not type(reference) or app != reference:
        return [f"{path}: {app!r} != {reference!r}"]
    return []


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."
