"""Scoring a scikit-learn pipeline through its ONNX graph with onnxruntime: the pipeline
path's (`/v1/batches`) fast path.

The model loop converts a pipeline when it logs the trained model
(agogosml.modelloop.onnx_export), logs the graph beside the MLflow model (run artifact
`onnx/model.onnx`), checks on the holdout that it predicts what the pipeline predicts (in
the gate, or at registration without one), and records the outcome as the model version's
tag `agogosml.onnx`: "parity", or "failed: <reason>". Only a version tagged
"parity" is scored here; any other is scored with its MLflow pyfunc, as before.

The graph takes one input per column, named as the column, shaped (rows, 1): a double
column as float64, a float column as float32, a long or integer column as int64, a
boolean as bool and a string as string. Its outputs are the label and the class
probabilities (no ZipMap).

Schema enforcement on this path. The records have been through signature.py first, as on
the pyfunc path; what differs is only what happens after it.
- Still checked, by signature.py, a column at a time, refusing only the record at fault
  (with the column, the value and the type expected): every signature column is present
  in the record (a missing optional column is null); each value has the column's type,
  with lossless casts only (100 → 100.0, 3.0 → 3; a string for a number, a fraction for
  a long, a long beyond 64 bits, a float beyond float32, a non-boolean for a boolean are
  refused); a string column holds strings or null. Fields that are not model inputs are
  never read.
- Then, here: each cast column becomes the graph input's element type: a double column
  float64, a float column float32, longs and integers int64, booleans bool. The graph
  computes in float64 where its converters can (the imputer, the scaler, a linear model:
  the demo's graph matches scikit-learn to ~1e-16); a tree ensemble computes in float32,
  which moves values across split thresholds, so such graphs mostly fail the parity check
  and are not served. For a graph that takes float32, a batch holding a double beyond
  float32's range is scored through the pyfunc instead. A null string becomes a value no
  fitted category equals, so one-hot encoding treats it as an unknown category, as the
  pipeline treats None; a null double is NaN, which the graph's imputer fills as the
  pipeline's does. onnxruntime refuses inputs of the wrong type or shape; any error of
  the graph fails the batch, and bisection then isolates the records it fails on, as
  with the pyfunc. Parity is checked on the holdout (and on the input example when the
  app loads the graph): evidence for records like those, not a proof for every record.
- Skipped, of what the pyfunc path does after casting: MLflow's `_enforce_schema` on the
  frame (column selection and order, its dtype checks and conversions, required columns
  present: all already guaranteed by the casting above), MLflow's params handling, and
  scikit-learn's own input validation (`check_array`: the feature names against
  `feature_names_in_`, which the graph replaces by binding inputs by name; the refusal
  of infinite values, which JSON cannot carry). No pandas DataFrame is built.

`/predict`, `/invocations` and the Open Inference Protocol keep the pyfunc and MLflow's
semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ONNX_ARTIFACT = "onnx/model.onnx"
"""The graph, as a run artifact beside the run's MLflow model."""
ONNX_TAG = "agogosml.onnx"
"""On the run and the model version: "parity", "converted" (not yet checked), or
"failed: <reason>"."""
PARITY = "parity"
CONVERTED = "converted"
PARITY_ATOL = 1e-5
MISSING_STRING = "\x00agogosml:null"
"""What a null string is given as: no category of a fitted encoder equals it."""

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


class NotRepresentable(ValueError):
    """A batch holds a value the graph's inputs cannot hold as the pipeline would see it (a
    double beyond float32's range): the batch is scored through the pyfunc instead."""


@dataclass(frozen=True)
class OnnxModel:
    """An onnxruntime session over a converted pipeline, one thread per call."""

    session: Any
    inputs: tuple[tuple[str, str], ...]
    """Each graph input's name and element type ('tensor(float)', ...)."""
    probabilities: str
    """The name of the output holding the class probabilities."""

    @classmethod
    def from_bytes(cls, graph: bytes) -> OnnxModel:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(graph, options,
                                               providers=["CPUExecutionProvider"])
        outputs = [output.name for output in session.get_outputs()]
        if "probabilities" not in outputs:
            raise ValueError(f"the graph has no probabilities output: {outputs}")
        return cls(session, tuple((i.name, i.type) for i in session.get_inputs()),
                   "probabilities")

    def feed(self, columns: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """The graph's inputs from columns cast to the signature: numpy arrays or lists,
        all of the same length."""
        feed = {}
        for name, kind in self.inputs:
            values = columns[name]
            if kind == "tensor(string)":
                array = np.array([MISSING_STRING if value is None else value
                                  for value in values], dtype=object)
                if array.size and not all(type(value) is str for value in array):
                    raise TypeError(f"input '{name}' takes strings")
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    array = np.asarray(values, dtype=_DTYPES[kind])
                if kind == "tensor(float)" and not np.isfinite(array).all() and \
                        np.isfinite(np.asarray(values, dtype=np.float64)).sum() > \
                        np.isfinite(array).sum():
                    raise NotRepresentable(f"input '{name}': a number beyond float32")
            feed[name] = array.reshape(-1, 1)
        return feed

    def probabilities_of(self, columns: dict[str, Any]) -> np.ndarray[Any, Any]:
        """The class probabilities, (rows, classes), as float64."""
        (output,) = self.session.run([self.probabilities], self.feed(columns))
        return np.asarray(output, dtype=np.float64)
