"""What casting records to the model's signature costs on the pipeline path, against what
the path cost before it and against the model's own predict, in the same run.

Run with `python -m bench.casting`. For each batch size, the demo records are turned into
the model's input (agogosml.services.app.model.LoadedModel.inputs) three ways:

- before: each input column gathered from the records and put straight into a DataFrame,
  as the app built its input before casting;
- cast: the same columns cast to the signature (signature.py) and made a DataFrame, as
  the app does now for the pyfunc (the ONNX path skips the frame: bench.onnx_scoring);
- predict: the demo model's own predict on the resulting frame, the work the cast precedes.

Figures are medians of repeated runs, in microseconds per batch, by process CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from agogosml.demo.data import FEATURES, events
from bench.demo_model import demo_model


def timed(work: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        work()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    model = demo_model()
    assert model.signature is not None
    names = model.signature.names
    print("casting records to the signature, medians of "
          f"{args.repeats} runs (process CPU time, µs per batch)")
    print(f"{'records':>8} {'before':>10} {'cast':>10} {'added':>10} {'predict':>10} "
          f"{'added/predict':>14}")
    for size in (1, 10, 100, 500, 1_000):
        records = [{name: item[name] for name in FEATURES}
                   for item in events(size, seed=3)]
        before = timed(lambda: pd.DataFrame(
            {name: [record.get(name) for record in records] for name in names}),  # noqa: B023
            args.repeats)
        cast = timed(lambda: model.inputs(records).frame, args.repeats)  # noqa: B023
        frame = model.inputs(records).frame
        predict = timed(lambda: model.pyfunc.predict(frame), max(20, args.repeats // 10))  # noqa: B023
        added = cast - before
        print(f"{size:>8} {before:>10.0f} {cast:>10.0f} {added:>10.0f} {predict:>10.0f} "
              f"{added / predict:>14.1%}")


if __name__ == "__main__":
    main()
