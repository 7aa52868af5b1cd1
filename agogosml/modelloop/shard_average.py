"""The served form of a sharded model: an MLflow python_function model whose predict is
the mean of its shards' predict_proba. It answers like a single scikit-learn model logged
with pyfunc_predict_fn="predict_proba": one row of two class probabilities per record,
behind the same input signature.

MLflow stores this file as the model's code ("models from code") and each shard as an
artifact named shard-NNN (an MLflow sklearn model directory); loading the model runs the
file. It imports nothing from agogosml, so the model serves wherever scikit-learn does.
Not imported by agogosml itself: it registers its model with MLflow when run.
"""

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc.model import PythonModel


def _shard_number(artifact: str) -> int:
    return int(artifact.rsplit("-", 1)[1])


def plain_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """String-dtype columns as object columns, converted once for all shards: each shard's
    encoder would otherwise convert them again, half of what scoring a shard costs."""
    strings = {name: object for name, dtype in frame.dtypes.items()
               if isinstance(dtype, pd.StringDtype)}
    return frame.astype(strings) if strings else frame


class ShardAverage(PythonModel):
    def __init__(self) -> None:
        self.shards: list[Any] = []

    def load_context(self, context: Any) -> None:
        self.shards = [mlflow.sklearn.load_model(context.artifacts[name])
                       for name in sorted(context.artifacts, key=_shard_number)]

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> np.ndarray:
        frame = plain_strings(model_input)
        mean: np.ndarray = np.mean([shard.predict_proba(frame) for shard in self.shards],
                                   axis=0)
        return mean


set_model(ShardAverage())
