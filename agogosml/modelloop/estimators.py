"""The scikit-learn pipelines the loop trains: preprocessing per feature kind, then one
of a few estimators chosen by name, with parameters.

Pipelines hold only scikit-learn objects, so a served model needs scikit-learn and not
agogosml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError

# Each factory takes the seed; the defaults are ours, the caller's params override them.
# The names are also in choices.ESTIMATOR_NAMES, which the CLI reads without sklearn.
ESTIMATORS: dict[str, Callable[[int], Any]] = {
    "logistic_regression": lambda seed: LogisticRegression(max_iter=1_000, random_state=seed),
    "random_forest": lambda seed: RandomForestClassifier(
        n_estimators=200, min_samples_leaf=5, random_state=seed),
    "hist_gradient_boosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
}


# MLflow saves scikit-learn models with skops, which loads only the types it trusts.
# These are the ones each pipeline holds, reviewed: SimpleImputer keeps the numpy dtype it
# was fitted on; the tree models keep their trees.
SKOPS_TRUSTED_TYPES: dict[str, tuple[str, ...]] = {
    "logistic_regression": ("numpy.dtype",),
    "random_forest": ("numpy.dtype", "sklearn.tree._tree.Tree"),
    "hist_gradient_boosting": (
        "numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
}


def build_estimator(name: str, params: Mapping[str, Any], seed: int) -> Any:
    if name not in ESTIMATORS:
        raise ModelLoopError(f"unknown estimator {name}; choose one of {', '.join(ESTIMATORS)}")
    estimator = ESTIMATORS[name](seed)
    known = estimator.get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelLoopError(f"{name} has no parameter {', '.join(unknown)}")
    return estimator.set_params(**params)


def build_pipeline(schema: FeatureSchema, estimator: str, params: Mapping[str, Any],
                   seed: int) -> Pipeline:
    columns = []
    if schema.numeric:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")),
                            ("scale", StandardScaler())])
        columns.append(("numeric", numeric, list(schema.numeric)))
    if schema.boolean:
        columns.append(("boolean", "passthrough", list(schema.boolean)))
    if schema.categorical:
        # Dense output: histogram gradient boosting refuses sparse input.
        columns.append(("categorical",
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                        list(schema.categorical)))
    return Pipeline([("features", ColumnTransformer(columns)),
                     ("classifier", build_estimator(estimator, params, seed))])


def estimator_params(pipeline: Pipeline) -> dict[str, Any]:
    """The classifier's effective parameters, for logging."""
    params: dict[str, Any] = pipeline.named_steps["classifier"].get_params(deep=False)
    return params
