"""A real MLflow store (SQLite + local artifacts) for the model loop, and the candidates
its tests share. Each test that moves aliases uses a model name of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from agogosml.demo.data import transactions
from agogosml.modelloop.dataset import DEMO_SUBJECT, write_demo_dataset
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, train

ROWS = 4_000
SUBJECTS = 200
"""Customers in the pseudonymized data set: twenty rows each, on average."""
PSEUDONYM_KEY = b"modelloop-tests-pseudonym-key"


@pytest.fixture(scope="package")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """MLflow's client is process-wide: put back what other test packages had set."""
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(),
              os.environ.get("MLFLOW_EXPERIMENT_ID"))
    root = tmp_path_factory.mktemp("modelloop")
    yield Tracking(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", "modelloop-tests",
                   "demo")
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])
    if before[2] is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = before[2]


@pytest.fixture(scope="package")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_dataset(tmp_path_factory.mktemp("data") / "transactions.csv", ROWS, 7)


@pytest.fixture(scope="package")
def shuffled_csv(demo_csv: Path) -> Path:
    """The demo rows with their labels shuffled: a model of noise."""
    frame = pd.read_csv(demo_csv)
    frame["is_fraud"] = np.random.default_rng(0).permutation(frame["is_fraud"].to_numpy())
    path = demo_csv.with_name("shuffled.csv")
    frame.to_csv(path, index=False)
    return path


def pseudonym(value: str) -> str:
    """An HMAC-SHA256 pseudonym shaped like the input reader's."""
    digest = hmac.new(PSEUDONYM_KEY, value.encode(), hashlib.sha256).digest()[:16]
    return "ps_" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


@pytest.fixture(scope="package")
def pseudonymized_frame() -> pd.DataFrame:
    """Demo rows of SUBJECTS customers whose ids are pseudonyms, as training data collected
    behind the input reader holds them."""
    frame = transactions(ROWS, 7, customers=SUBJECTS)
    frame[DEMO_SUBJECT] = frame[DEMO_SUBJECT].map(pseudonym)
    return frame


@pytest.fixture(scope="package")
def pseudonymized_csv(tmp_path_factory: pytest.TempPathFactory,
                      pseudonymized_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("pseudonymized") / "transactions.csv"
    pseudonymized_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="package")
def baseline(tracking: Tracking, demo_csv: Path) -> TrainResult:
    return train(tracking, TrainConfig(demo_csv))


def named(tracking: Tracking, model_name: str) -> Tracking:
    return replace(tracking, model_name=model_name)
