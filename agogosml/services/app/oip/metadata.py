"""What the server and its model say about themselves: the inputs from the model's
signature, the outputs as `infer` returns them (learnt by scoring at load)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from agogosml.services.app.model import LoadedModel
from agogosml.services.app.oip.codec import output_metadata

EXTENSIONS = ["binary_tensor_data"]

MLFLOW_TO_OIP = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
                 "boolean": "BOOL", "string": "BYTES"}


def server_metadata() -> dict[str, Any]:
    try:
        release = version("agogosml")
    except PackageNotFoundError:
        release = "unknown"
    return {"name": "agogosml", "version": release, "extensions": EXTENSIONS}


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    columns = model.signature.columns if model.signature is not None else ()
    return {"name": model.ref.name, "versions": [model.ref.version], "platform": "mlflow",
            "inputs": [{"name": column.name,
                        "datatype": MLFLOW_TO_OIP.get(column.type or "", "BYTES"),
                        "shape": [-1]} for column in columns],
            "outputs": output_metadata(model.outputs)}
