"""Each estimator fits behind the same preprocessing; bad names and params are refused."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from agogosml.demo.data import FEATURES, LABEL, transactions
from agogosml.modelloop.choices import ESTIMATOR_NAMES
from agogosml.modelloop.dataset import DatasetSpec, resolve_schema
from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.estimators import ESTIMATORS, SKOPS_TRUSTED_TYPES, build_pipeline

SMALL: dict[str, dict[str, Any]] = {"logistic_regression": {"C": 0.5},
         "random_forest": {"n_estimators": 20},
         "hist_gradient_boosting": {"max_iter": 5}}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return transactions(1_000, 3)


def test_the_cli_offers_every_estimator() -> None:
    assert set(ESTIMATOR_NAMES) == set(ESTIMATORS) == set(SKOPS_TRUSTED_TYPES) == set(SMALL)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_each_estimator_fits_and_answers_probabilities(data: pd.DataFrame, name: str) -> None:
    schema = resolve_schema(data, DatasetSpec())
    pipeline = build_pipeline(schema, name, SMALL[name], seed=1).fit(
        data[list(FEATURES)], data[LABEL])
    probabilities = pipeline.predict_proba(data[list(FEATURES)].head(10))
    assert probabilities.shape == (10, 2)
    assert list(pipeline.feature_names_in_) == list(FEATURES)


def test_a_forced_categorical_integer_is_one_hot_encoded(data: pd.DataFrame) -> None:
    schema = resolve_schema(data, DatasetSpec(categorical=("hour",)))
    assert "hour" in schema.categorical
    assert "hour" not in schema.numeric
    assert schema.boolean == ("card_present",)


def test_unknown_estimators_and_parameters_are_refused(data: pd.DataFrame) -> None:
    schema = resolve_schema(data, DatasetSpec())
    with pytest.raises(ModelLoopError, match="unknown estimator svm"):
        build_pipeline(schema, "svm", {}, seed=1)
    with pytest.raises(ModelLoopError, match="random_forest has no parameter depth"):
        build_pipeline(schema, "random_forest", {"depth": 3}, seed=1)
