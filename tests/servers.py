"""Running an ASGI app on a real uvicorn server in a thread, on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from agogosml.localstack.broker import free_port
from agogosml.web.auth import Credentials, bearer_header


@contextmanager
def run_server(app: FastAPI, timeout_s: float = 10.0,
               sock: socket.socket | None = None) -> Iterator[str]:
    """`app` on uvicorn in a thread, on a free loopback port or on `sock`, already bound
    (to listen on another address); yields its base URL once it accepts requests."""
    if sock is None:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_config=None, lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        url = f"http://127.0.0.1:{port}"
    else:
        host, port = sock.getsockname()[:2]
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        url = f"http://{host}:{port}"
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)  # polling uvicorn's started flag
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout_s)


class PredictLoad:
    """Posts the same records to /predict continuously from a thread, keeping every answer:
    the traffic a model swap must not disturb."""

    def __init__(self, url: str, records: list[dict[str, Any]]) -> None:
        self.url = url
        self.records = records
        self.answers: list[tuple[int, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                response = client.post(f"{self.url}/predict", json=self.records)
                self.answers.append((response.status_code, response.json()))

    def __enter__(self) -> PredictLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_for_version(self, version: str, timeout_s: float = 30) -> None:
        """Until the latest answer came from `version` (earlier ones may predate a swap)."""
        deadline = time.monotonic() + timeout_s
        while not self.answers or self.answers[-1][1].get("model", {}).get("version") != version:
            assert time.monotonic() < deadline, f"version {version} never served"
            time.sleep(0.05)  # polling the answers the load thread collects

    def failures(self) -> list[tuple[int, Any]]:
        return [(status, body) for status, body in self.answers if status != 200]


PIPELINE_TOKEN = SecretStr("pipeline-token-for-tests-0123456789")
"""The bearer token the services under test send and accept on the pipeline hops."""
PIPELINE = Credentials(PIPELINE_TOKEN)
PIPELINE_AUTH = bearer_header(PIPELINE_TOKEN)
