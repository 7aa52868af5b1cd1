"""Scoring rows per second per core: the app's pipeline batch path and /predict, against
the model's own predict on the same batches, measured in the same run.

Run with `make bench-scoring` (`python -m bench.scoring`). The app runs as its own
process (as in production) with a real output writer on the file transport; its CPU
time is read from /proc, so "per core" means rows scored per CPU-second the app used.
The baseline is `pyfunc.predict` on the same prebuilt DataFrame in this process,
timed with process CPU time. Two client threads keep the app busy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from agogosml.demo.data import FEATURES, events
from agogosml.localstack.broker import free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import new_pipeline_token, pipeline_token_env
from bench.procs import cpu_seconds

Post = Callable[[httpx.Client, int], None]


def train(workdir: Path) -> tuple[str, str]:
    from agogosml.demo.train import train_and_register

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    demo = train_and_register(tracking_uri, workdir / "artifacts", rows=5_000)
    return tracking_uri, f"models:/{demo.model_name}@champion"


def baseline(model_uri: str, records: list[dict[str, Any]], repeats: int) -> float:
    import pandas as pd

    from agogosml.services.app.model import load_model

    model = load_model(model_uri)
    frame = pd.DataFrame.from_records(records)[list(FEATURES)]
    model.pyfunc.predict(frame)
    started = time.process_time()
    for _ in range(repeats):
        model.pyfunc.predict(frame)
    return len(records) * repeats / (time.process_time() - started)


def drive(app: ServiceProcess, post: Post, batches: int, threads: int = 2) -> tuple[float, float]:
    """Send `batches` requests from `threads` threads; return (app CPU s, wall s)."""
    assert app.process is not None
    pid = app.process.pid

    def worker(count: int) -> None:
        with httpx.Client(timeout=60) as client:
            for number in range(count):
                post(client, number)

    cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
    workers = [threading.Thread(target=worker, args=(batches // threads,)) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return cpu_seconds(pid) - cpu_before, time.perf_counter() - wall_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=500, help="rows per request")
    parser.add_argument("--batches", type=int, default=60, help="requests per measurement")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agogosml-scoring-") as folder:
        workdir = Path(folder)
        tracking_uri, model_uri = train(workdir)
        records = events(args.batch, seed=3)
        payloads = [{name: r[name] for name in FEATURES} for r in records]
        ports = {"writer": free_port(), "app": free_port()}
        token = new_pipeline_token()
        tokens = pipeline_token_env(token)
        writer = ServiceProcess("output_writer", ports["writer"], {
            "AGOGOSML_WRITER_PORT": str(ports["writer"]), "AGOGOSML_WRITER_SINK": "file",
            "AGOGOSML_WRITER_FILES_DIR": str(workdir / "out"), **tokens}, workdir)
        app = ServiceProcess("app", ports["app"], {
            "AGOGOSML_APP_PORT": str(ports["app"]), "AGOGOSML_APP_MODEL_URI": model_uri,
            "AGOGOSML_APP_MLFLOW_TRACKING_URI": tracking_uri,
            "AGOGOSML_APP_WRITER_URL": writer.url, "AGOGOSML_APP_RELOAD_INTERVAL_S": "0",
            **tokens},
            workdir)
        batch_body = orjson.dumps({"events": [
            {"id": f"e{i}", "time": 0, "subject": None, "payload": p}
            for i, p in enumerate(payloads)]})
        predict_body = orjson.dumps(payloads)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}

        def post_batch(client: httpx.Client, _: int) -> None:
            client.post(f"{app.url}/v1/batches", content=batch_body,
                        headers=headers).raise_for_status()

        def post_predict(client: httpx.Client, _: int) -> None:
            client.post(f"{app.url}/predict", content=predict_body,
                        headers=headers).raise_for_status()

        results: dict[str, list[float]] = {"model predict (baseline)": [],
                                           "app /v1/batches (scores + writer)": [],
                                           "app /predict": []}
        walls: dict[str, list[float]] = {name: [] for name in results}
        try:
            for service in (writer, app):
                service.start()
                service.wait_ready()
            for warm_up in (post_batch, post_predict):
                drive(app, warm_up, 4)
            rows = args.batch * args.batches
            for _ in range(args.reps):
                results["model predict (baseline)"].append(
                    baseline(model_uri, payloads, args.batches))
                for name, post in (("app /v1/batches (scores + writer)", post_batch),
                                   ("app /predict", post_predict)):
                    cpu, wall = drive(app, post, args.batches)
                    results[name].append(rows / cpu)
                    walls[name].append(rows / wall)
        finally:
            app.terminate()
            writer.terminate()

    base = statistics.median(results["model predict (baseline)"])
    print(f"scoring benchmark: {args.batch} rows per request, {args.batches} requests, "
          f"{args.reps} runs (median); nproc=2")
    print(f"{'path':38s} {'rows/s per core':>16s} {'rows/s wall':>12s} {'vs baseline':>12s}")
    for name, values in results.items():
        per_core = statistics.median(values)
        wall_text = f"{statistics.median(walls[name]):12.0f}" if walls[name] else f"{'-':>12}"
        print(f"{name:38s} {per_core:16.0f} {wall_text} {per_core / base:11.0%}")


if __name__ == "__main__":
    main()
