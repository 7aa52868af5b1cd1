"""The pipeline path's scoring through the ONNX graph against through the MLflow pyfunc,
on the demo model, in the same run.

Run with `python -m bench.onnx_scoring`. For each batch size (1, 17 and 500 demo records)
the records are scored as /v1/batches scores them, `LoadedModel.score_input(
LoadedModel.inputs(records))`: cast to the signature, then either the graph with
onnxruntime (one thread, from columnar arrays) or the pyfunc (a DataFrame, MLflow's schema
enforcement, the scikit-learn pipeline). Figures are rows per second per core: the batch
size over the median process CPU time of repeated runs, in blocks of each path alternated
five times, with scikit-learn's thread pools held to one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from agogosml.demo.data import FEATURES, events
from bench.demo_model import demo_model

SIZES = (1, 17, 500)
ROUNDS = 5
"""Blocks of runs of each path, alternated."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    from agogosml.services.app.model import LoadedModel

    onnx = demo_model()
    if onnx.onnx is None:
        raise SystemExit("the demo version has no ONNX graph with parity")
    pyfunc = replace(onnx, onnx=None)

    def cpu_seconds(model: LoadedModel, records: list[dict[str, object]]) -> float:
        started = time.process_time()
        model.score_input(model.inputs(records))
        return time.process_time() - started

    # One core each: the graph runs with one onnxruntime thread; scikit-learn's BLAS and
    # OpenMP pools are held to one thread too, so process CPU time is the cost on a core
    # and no pool spinning down after one path is charged to the other.
    threadpool_limits(1)
    print("scoring on the pipeline path (cast + model), rows/s per core, medians of "
          f"{args.repeats} runs in alternating blocks (process CPU time)")
    print(f"{'records':>8} {'onnx':>12} {'pyfunc':>12} {'onnx/pyfunc':>12}")
    for size in SIZES:
        records = [{name: item[name] for name in FEATURES} for item in events(size, seed=3)]
        repeats = args.repeats if size < 500 else max(30, args.repeats // 5)
        samples: dict[str, list[float]] = {"onnx": [], "pyfunc": []}
        for _ in range(ROUNDS):
            for name, model in (("onnx", onnx), ("pyfunc", pyfunc)):
                # The first call of a block is not counted (caches warm up).
                cpu_seconds(model, records)
                samples[name] += [cpu_seconds(model, records)
                                  for _ in range(repeats // ROUNDS)]
        rates = {name: size / max(statistics.median(values), 1e-9)
                 for name, values in samples.items()}
        print(f"{size:>8} {rates['onnx']:>12,.0f} {rates['pyfunc']:>12,.0f} "
              f"{rates['onnx'] / rates['pyfunc']:>11.1f}x")


if __name__ == "__main__":
    main()
