"""`agogosml retrain-server`: the HTTP entry monitors and erasure jobs call, as a process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from agogosml.localstack.broker import free_port


def test_a_retrain_over_http_registers_a_challenger(tmp_path: Path, demo_csv: Path) -> None:
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "agogosml.cli", "retrain-server", "--port", str(port),
             "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts", str(tmp_path / "artifacts"), "--model-name", "served",
             "--dataset", str(demo_csv)],
            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/v1/retrain",
                                      json={"trigger": "drift"}, timeout=120)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the retrain server never listened"
                time.sleep(0.2)  # polling until the server listens
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["trigger"] == "drift"
        assert result["registered"] is True
        assert result["model_name"] == "served"
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/retrain", json={"trigger": "whim"})
        assert refused.status_code == 422
    finally:
        server.terminate()
        server.wait(30)
