"""Scoring rows per second per core: the app's pipeline batch path and /predict, against
the model's own predict on the same batches, measured in the same run.

Run with `python -m bench.scoring` (`make bench` runs it, and bench.pipeline runs it as a
child with `--model-uri ... --json` for its target line). The app runs as its own process
(as in production) with a real output writer on the file transport; its CPU time is read
from /proc, so "per core" means rows scored per CPU-second the app used. The baseline is
`pyfunc.predict` on the same prebuilt DataFrame in this process, timed with process CPU
time. Two client threads keep the app busy.

The ONNX row: when the registered model version carries an ONNX graph (a `*.onnx` file
among its artifacts) and onnxruntime is installed, `onnx_baseline` scores the same rows
through onnxruntime, columnar, no DataFrame; otherwise the row says why it is missing.
If the app scores through ONNX itself, /v1/batches above measures that path.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
BASELINE = "model predict (baseline)"
BATCHES = "app /v1/batches (scores + writer)"
PREDICT = "app /predict"
ONNX = "ONNX graph via onnxruntime"


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


ONNX_RUN_ARTIFACT = "onnx/model.onnx"
"""Where the model loop logs the graph: a run artifact beside the run's MLflow model
(agogosml.services.app.onnx.ONNX_ARTIFACT)."""


def onnx_graph(model_uri: str) -> Path | None:
    """The model version's ONNX graph, downloaded: a `*.onnx` file in the model's own
    artifacts, else the run artifact the model loop logs beside the model; None if there
    is neither."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    graphs = sorted(Path(download_artifacts(model_uri)).rglob("*.onnx"))
    if graphs:
        return graphs[0]
    name, _, alias = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    version = (client.get_model_version_by_alias(name, alias) if alias
               else client.get_model_version(*name.split("/", 1)))
    try:
        return Path(download_artifacts(f"runs:/{version.run_id}/{ONNX_RUN_ARTIFACT}"))
    except Exception:  # MLflow raises several kinds for a missing artifact
        return None


def onnx_baseline(model_uri: str, records: list[dict[str, Any]],
                  repeats: int) -> float | str:
    """Rows per CPU-second of the model version's ONNX graph on the same rows, fed as one
    column array per graph input; or, when there is no graph to run, why."""
    import numpy as np

    try:  # untyped, and an optional dependency: imported by name
        onnxruntime: Any = importlib.import_module("onnxruntime")
    except ImportError:
        return "onnxruntime is not installed"
    graph = onnx_graph(model_uri)
    if graph is None:
        return "the model version has no ONNX graph"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # per core
    session = onnxruntime.InferenceSession(str(graph), options,
                                           providers=["CPUExecutionProvider"])
    dtypes = {"tensor(float)": np.float32, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(bool)": np.bool_, "tensor(string)": np.str_}
    inputs = {}
    for spec in session.get_inputs():
        if spec.name not in FEATURES:
            return f"the graph's input {spec.name!r} is not a feature column"
        column: Any = np.array([row[spec.name] for row in records], dtype=dtypes[spec.type])
        inputs[spec.name] = column.astype(object) if spec.type == "tensor(string)" else column
        inputs[spec.name] = inputs[spec.name].reshape(-1, 1)
    session.run(None, inputs)
    started = time.process_time()
    for _ in range(repeats):
        session.run(None, inputs)
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
    parser.add_argument("--model-uri", help="score this registered model (with "
                        "--tracking-uri) instead of training the demo model")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document (what bench.pipeline reads)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agogosml-scoring-") as folder:
        workdir = Path(folder)
        if args.model_uri:
            tracking_uri, model_uri = args.tracking_uri, args.model_uri
            os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        else:
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

        results: dict[str, list[float]] = {BASELINE: [], BATCHES: [], PREDICT: []}
        walls: dict[str, list[float]] = {name: [] for name in results}
        missing: dict[str, str] = {}
        try:
            for service in (writer, app):
                service.start()
                service.wait_ready()
            for warm_up in (post_batch, post_predict):
                drive(app, warm_up, 4)
            rows = args.batch * args.batches
            for _ in range(args.reps):
                results[BASELINE].append(baseline(model_uri, payloads, args.batches))
                onnx = onnx_baseline(model_uri, payloads, args.batches)
                if isinstance(onnx, str):
                    missing[ONNX] = onnx
                else:
                    results.setdefault(ONNX, []).append(onnx)
                    walls.setdefault(ONNX, [])
                for name, post in ((BATCHES, post_batch), (PREDICT, post_predict)):
                    cpu, wall = drive(app, post, args.batches)
                    results[name].append(rows / cpu)
                    walls[name].append(rows / wall)
        finally:
            app.terminate()
            writer.terminate()

    per_core = {name: statistics.median(values) for name, values in results.items()}
    printed = table(per_core, walls, missing, args.batch, args.batches, args.reps)
    if args.json:
        print(orjson.dumps({"per_core": per_core, "baseline": BASELINE, "batches": BATCHES,
                            "onnx": ONNX if ONNX in per_core else None,
                            "missing": missing, "table": printed}).decode())
        return
    print(printed)


def table(per_core: dict[str, float], walls: dict[str, list[float]],
          missing: dict[str, str], batch: int, requests: int, reps: int) -> str:
    base = per_core[BASELINE]
    lines = [f"scoring benchmark: {batch} rows per request, {requests} requests, {reps} runs "
             f"(median); nproc={os.cpu_count()}",
             f"{'path':38s} {'rows/s per core':>16s} {'rows/s wall':>12s} {'vs baseline':>12s}"]
    for name, value in per_core.items():
        wall = walls.get(name)
        wall_text = f"{statistics.median(wall):12.0f}" if wall else f"{'-':>12}"
        lines.append(f"{name:38s} {value:16.0f} {wall_text} {value / base:11.0%}")
    lines += [f"{name:38s} {'-':>16s} {'-':>12s} {'-':>12s}  ({why})"
              for name, why in missing.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
