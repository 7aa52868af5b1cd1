"""`agogosml retrain-server`: the HTTP entry monitors and erasure jobs call, as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agogosml.localstack.broker import free_port

TOKEN = "retrain-token-for-tests-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_the_retrain_server_refuses_to_start_without_a_token(tmp_path: Path,
                                                             demo_csv: Path) -> None:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("AGOGOSML_RETRAIN_")}
    finished = subprocess.run(
        [sys.executable, "-m", "agogosml.cli", "retrain-server", "--port", str(free_port()),
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--dataset", str(demo_csv)],
        env=environment, capture_output=True, text=True, timeout=60)
    assert finished.returncode != 0
    assert "AGOGOSML_RETRAIN_TOKEN" in finished.stderr


def test_a_retrain_over_http_registers_a_challenger(tmp_path: Path, demo_csv: Path) -> None:
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "agogosml.cli", "retrain-server", "--port", str(port),
             "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts", str(tmp_path / "artifacts"), "--model-name", "served",
             "--dataset", str(demo_csv)],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "AGOGOSML_RETRAIN_TOKEN": TOKEN})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                anonymous = httpx.post(f"http://127.0.0.1:{port}/v1/retrain",
                                       json={"trigger": "drift"}, timeout=120)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the retrain server never listened"
                time.sleep(0.2)  # polling until the server listens
        assert anonymous.status_code == 401, anonymous.text
        wrong = httpx.post(f"http://127.0.0.1:{port}/v1/retrain", json={"trigger": "drift"},
                           headers={"authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 401
        response = httpx.post(f"http://127.0.0.1:{port}/v1/retrain", json={"trigger": "drift"},
                              headers=AUTH, timeout=120)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["trigger"] == "drift"
        assert result["registered"] is True
        assert result["model_name"] == "served"
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/retrain", json={"trigger": "whim"},
                             headers=AUTH)
        assert refused.status_code == 422
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'agogosml_auth_refused_total{endpoint="/v1/retrain",reason="missing"} 1.0' \
            in metrics
        assert TOKEN not in (tmp_path / "server.log").read_text()
    finally:
        server.terminate()
        server.wait(30)
