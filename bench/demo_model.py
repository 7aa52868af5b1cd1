"""The demo model as the benches score it: trained and registered in a throwaway MLflow
store, then loaded as the app loads it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from agogosml.services.app.model import LoadedModel


def demo_model(rows: int = 5_000) -> LoadedModel:
    import mlflow

    from agogosml.demo.train import train_and_register
    from agogosml.services.app.model import load_model

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
        demo = train_and_register(tracking_uri, workdir / "artifacts", rows=rows)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        return load_model(f"models:/{demo.model_name}@champion")
