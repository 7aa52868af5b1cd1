"""`agogosml gdpr forget` killed (SIGKILL) while it works, then run again: the second run
resumes the same request and ends as one run would have. Real MLflow (SQLite), a sharded
(SISA) champion with lineage, a real snapshot and subject key store; the erasure refits only
the forgotten subject's shard, the new version is promoted and the tainted one retired."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from agogosml.demo.data import transactions
from agogosml.modelloop.dataset import DatasetSpec
from agogosml.modelloop.registry import bootstrap_champion
from agogosml.modelloop.shards import held_out, shard_of
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, train
from agogosml.privacy.actions import Pseudonymizer
from agogosml.privacy.forget.journal import open_journal
from agogosml.privacy.forget.process import STEPS
from agogosml.privacy.keyfile import ensure_keyring_file
from agogosml.privacy.keys import Keyring
from agogosml.privacy.lineage.index import open_lineage_index
from agogosml.privacy.subjectkeys import open_subject_keys

SHARDS = 4
PSEUDONYM = Pseudonymizer(b"k" * 32)


def forget_command(subject: str) -> list[str]:
    return [sys.executable, "-m", "agogosml.cli", "gdpr", "forget", subject]


def wait_for_step(store_url: str, step: str, process: subprocess.Popen[str],
                  timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with open_journal(store_url) as journal:
            if any(step in request.steps for request in journal.requests()):
                return
        time.sleep(0.05)  # polling the journal the forget writes
    raise AssertionError(f"the forget never recorded {step} (exit {process.poll()})")


@pytest.mark.slow
@pytest.mark.usefixtures("own_mlflow_uris")
def test_a_killed_forget_resumes_to_a_promoted_model_without_the_subject(
        tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'privacy.db'}"
    frame = transactions(4_000, 5, customers=200)
    frame["customer_id"] = frame["customer_id"].map(PSEUDONYM)
    snapshot = tmp_path / "snapshot.csv"
    frame.to_csv(snapshot, index=False)
    config = TrainConfig(snapshot, DatasetSpec(), shards=SHARDS)
    subject = next(str(value) for value in frame["customer_id"]  # one trained on
                   if not held_out(str(value), config.holdout_fraction, config.seed))
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts",
                        "forget-tests", "demo", store_url)
    trained = train(tracking, config)
    tainted = bootstrap_champion(tracking, trained.run_id)
    kek = tmp_path / "kek.yaml"
    ensure_keyring_file(kek)
    with open_subject_keys(store_url, Keyring.from_file(kek)) as keys:
        keys.keyring_for(subject)  # the reader made their key when it saw them
    env = {**os.environ, "AGOGOSML_GDPR_STORE_URL": store_url,
           "AGOGOSML_GDPR_TRACKING_URI": tracking.tracking_uri,
           "AGOGOSML_GDPR_ARTIFACTS": str(tracking.artifacts_dir),
           "AGOGOSML_GDPR_SNAPSHOTS": json.dumps([str(snapshot)]),
           "AGOGOSML_GDPR_SHARDS": str(SHARDS), "AGOGOSML_GDPR_KEK_PATH": str(kek),
           "AGOGOSML_GDPR_MODEL_NAME": "demo"}

    first = subprocess.Popen(forget_command(subject), env=env, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_step(store_url, "keys", first)  # the retrain starts next: kill it there
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    with open_journal(store_url) as journal:
        [killed] = journal.requests()
    assert killed.state == "open"
    done_before = [step for step in STEPS if step in killed.steps]
    assert done_before == list(STEPS[:len(done_before)])  # a prefix, in order
    assert "keys" in done_before

    second = subprocess.run(forget_command(subject), env=env, text=True, capture_output=True,
                            timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2_000:]
    audit = json.loads(second.stdout)
    assert audit["request_id"] == killed.id
    assert audit["state"] == "done"
    assert audit["pending"] == []
    outcomes = {step["step"]: step["outcome"] for step in audit["steps"]}
    assert outcomes["retrain"]["fitted_shards"] == [shard_of(subject, SHARDS)]
    assert len(outcomes["retrain"]["reused_shards"]) == SHARDS - 1
    assert outcomes["keys"] == {"shredded": True}

    new_version = audit["replaced"]["by"]
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("demo", "champion").version) == new_version
    assert client.get_model_version("demo", tainted).tags["agogosml.retired"]
    assert not Path(client.get_run(trained.run_id).info.artifact_uri.removeprefix(
        "file://")).exists()
    assert subject not in set(pd.read_csv(snapshot)["customer_id"])
    with open_lineage_index(store_url) as lineage:
        assert lineage.versions_for(subject) == []
    model = mlflow.pyfunc.load_model(f"models:/demo/{new_version}")
    features = frame.drop(columns=["customer_id", "name", "email", "phone", "is_fraud",
                                   "transaction_id"]).head(5)
    assert model.predict(features).shape == (5, 2)
