"""Privacy end to end, through `make run`'s own local stack (Kafka, MLflow, the reader with the
demo's PII policy, the app, the writer, the monitor with its GDPR endpoints, the retrain
server and the demo producer, all real processes):

records carrying known PII canaries go in, valid and invalid, for one demo customer; no
canary is found in clear in any log, metrics page, output or dead-letter topic, the event
store, the privacy store or MLflow (its database, artifacts and the training snapshot);
the lineage endpoint finds the champion that customer trained; a forget over the endpoint
retrains and promotes a model without them, retires the tainted version, and leaves them in
no store, with a complete audit record; their sealed dead letters no longer open.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import mlflow
import orjson
import pytest
from mlflow.tracking import MlflowClient

from agogosml.demo.data import transactions
from agogosml.errors import InvalidRecordError
from agogosml.privacy.actions import Pseudonymizer
from agogosml.privacy.forget.process import STEPS
from agogosml.privacy.keys import Keyring
from agogosml.privacy.sealing import Sealer
from agogosml.privacy.subjectkeys import open_subject_keys
from agogosml.services.input_reader.deadletters import read_dead_letter
from tests.e2e.canaries import Canary, files_under, leaks
from tests.e2e.localstack import local_stack, wait_until
from tests.kafka_helpers import produce_json, read_topic_values

CUSTOMER = "C000042"
"""A demo customer: the training snapshot holds their transactions."""
CANARIES = (
    Canary("name", "Zebulon Canaryfield"),
    Canary("email", "zebulon.canaryfield.7f3a@example.org"),
    Canary("phone", "+1-555-0199-7342"),
    Canary("customer_id", CUSTOMER),
)
VALID, INVALID = 25, 5


@dataclass
class Stack:
    var: Path
    ports: dict[str, str]
    token: str

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{self.ports[variable]}"

    @property
    def monitor(self) -> str:
        return self.url("AGOGOSML_MONITOR_PORT")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['AGOGOSML_KAFKA_PORT']}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.monitor}{path}", timeout=30,
                               headers={"authorization": f"Bearer {self.token}"}, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def keyring(self) -> Keyring:
        return Keyring.from_file(self.var / "privacy" / "keyring.yaml")

    def events_of(self, subject: str, ingested_before_ms: int = 2**62) -> int:
        with sqlite3.connect(self.var / "monitor" / "events.db") as db:
            [(count,)] = db.execute(
                "SELECT COUNT(*) FROM events WHERE subject = ? AND ingested_at_ms < ?",
                (subject, ingested_before_ms))
        return int(count)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(tmp_path, AGOGOSML_DEMO_RATE="50", AGOGOSML_MONITOR_TICK_S="1") as ports:
        var = tmp_path / "var"
        yield Stack(var, ports, (var / "pipeline-token").read_text().strip())


def canary_records() -> list[dict[str, Any]]:
    names = dict((canary.field, canary.value) for canary in CANARIES)
    rows = transactions(VALID + INVALID, seed=99).to_dict("records")
    records = []
    for index, row in enumerate(rows):
        record = {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        record.update(names, transaction_id=f"canary-{index:03d}")
        if index >= VALID:
            record["hour"] = 99  # refused by the schema: a dead letter
        record.pop("is_fraud", None)
        records.append(record)
    return records


def gather(stack: Stack) -> dict[str, bytes]:
    """What a leak could be in: every file the stack wrote but Kafka's own log (its input
    topic holds the records as they came, before the reader), each topic after the reader,
    and each service's metrics page."""
    places = {str(path): path.read_bytes()
              for path in files_under(stack.var)
              if "kafka" not in path.relative_to(stack.var).parts}
    for topic in ("agogosml.output", "agogosml.deadletter", "agogosml.labels"):
        places[f"topic {topic}"] = b"\n".join(
            asyncio.run(read_topic_values(stack.bootstrap, topic)))
    for name in ("INPUT_READER", "APP", "WRITER", "MONITOR"):
        variable = f"AGOGOSML_{'READER' if name == 'INPUT_READER' else name}_PORT"
        places[f"metrics {name}"] = httpx.get(f"{stack.url(variable)}/metrics",
                                              timeout=10).content
    return places


@pytest.mark.usefixtures("own_mlflow_uris")
def test_pii_stays_out_and_a_forgotten_subject_is_gone(stack: Stack) -> None:
    subject = Pseudonymizer(stack.keyring().pseudonym_key())(CUSTOMER)
    asyncio.run(produce_json(stack.bootstrap, "agogosml.input", canary_records()))
    wait_until(lambda: stack.events_of(subject) >= VALID, 120, "the canary events stored")

    def sealed_letters() -> list[dict[str, Any]]:
        values = asyncio.run(read_topic_values(stack.bootstrap, "agogosml.deadletter"))
        return [letter for letter in map(orjson.loads, values)
                if letter.get("subject") == subject]

    letters = wait_until(lambda: len(sealed_letters()) >= INVALID and sealed_letters(), 60,
                         "the canaries' dead letters")
    assert all(letter["sealed"]["key_id"].startswith("s-") for letter in letters)

    found = leaks(gather(stack), CANARIES)
    assert found == {}, found

    lineage = stack.api("GET", f"/v1/gdpr/lineage/{quote(subject, safe='')}")
    tainted = {use["model_version"] for use in lineage["versions"]}
    assert "1" in tainted  # the demo champion trained on this customer

    started = stack.api("POST", "/v1/gdpr/forget", json={"subject": subject})
    audit = wait_until(
        lambda: (record := stack.api("GET", started["status_url"]))["state"] != "open"
        and record, 300, "the forget to finish")
    assert audit["state"] == "done", audit
    assert audit["pending"] == []
    assert [step["step"] for step in audit["steps"]] == list(STEPS)
    assert audit["deadline_status"].startswith("met")
    outcomes = {step["step"]: step["outcome"] for step in audit["steps"]}
    assert sum(outcomes["snapshots"]["rows_removed"].values()) > 0
    assert outcomes["event_store"]["events"] >= VALID
    assert outcomes["keys"] == {"shredded": True}
    new_version = audit["replaced"]["by"]
    assert new_version is not None
    assert new_version not in tainted

    # The new model is champion; the tainted ones are retired, their artifacts gone.
    mlflow.set_tracking_uri(f"sqlite:///{stack.var / 'mlflow' / 'mlflow.db'}")
    mlflow.set_registry_uri(mlflow.get_tracking_uri())
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("demo", "champion").version) == new_version
    for version in tainted:
        assert client.get_model_version("demo", version).tags["agogosml.retired"]
        with pytest.raises(Exception):  # noqa: B017,PT011 - any "no such artifact" error
            mlflow.pyfunc.load_model(f"models:/demo/{version}")

    # Gone from every store: events, snapshot, lineage. (The demo producer goes on sending
    # this customer's transactions: what arrived after the purge is new data.)
    purged_at = datetime.fromisoformat(
        next(step["done_at"] for step in audit["steps"] if step["step"] == "event_store"))
    assert stack.events_of(subject, int(purged_at.timestamp() * 1000)) == 0
    snapshot = next((stack.var / "mlflow" / "artifacts" / "datasets").glob("*.csv"))
    assert subject not in snapshot.read_text()
    assert stack.api("GET", f"/v1/gdpr/lineage/{quote(subject, safe='')}")["versions"] == []

    # Their sealed dead letters no longer open, anywhere, with the stack's own keys.
    kek = Keyring.from_file(stack.var / "privacy" / "kek.yaml")
    with open_subject_keys(f"sqlite:///{stack.var / 'privacy' / 'privacy.db'}", kek) as keys:
        sealer = Sealer(stack.keyring(), keys)
        for value in asyncio.run(read_topic_values(stack.bootstrap, "agogosml.deadletter")):
            if orjson.loads(value).get("subject") != subject:
                continue
            with pytest.raises(InvalidRecordError, match="shredded"):
                read_dead_letter(value, sealer)
