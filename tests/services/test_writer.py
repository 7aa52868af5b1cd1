"""The output writer's contract over real HTTP: 2xx only after the sink confirmed, 503 when
it did not (so the chain retries), 400 for a record the sink can never take (so the
reader dead-letters instead of retrying forever)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from agogosml.errors import AgogosmlError, RecordTooLargeError, SinkError
from agogosml.services.output_writer.service import create_app
from agogosml.streaming.base import OutRecord
from tests.servers import run_server


class ScriptedSink:
    def __init__(self, failure: AgogosmlError | None = None) -> None:
        self.failure = failure
        self.written: list[OutRecord] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def is_ready(self) -> bool:
        return self.failure is None

    async def send(self, records: Sequence[OutRecord]) -> None:
        if self.failure is not None:
            raise self.failure
        self.written.extend(records)


BATCH = {"events": [{"id": "a", "prediction": 1}, {"id": "b", "prediction": 0}]}


@pytest.mark.parametrize(("failure", "status"), [
    (None, 200),
    (SinkError("Kafka did not acknowledge the batch"), 503),
    (RecordTooLargeError("a record is larger than the topic accepts"), 400),
])
def test_the_writer_answers_after_the_sink(failure: AgogosmlError | None, status: int) -> None:
    sink = ScriptedSink(failure)
    with run_server(create_app(sink, CollectorRegistry())) as url:
        response = httpx.post(f"{url}/v1/batches", content=orjson.dumps(BATCH), timeout=10)
        ready = httpx.get(f"{url}/readyz").status_code
    assert response.status_code == status
    if failure is None:
        assert [(r.key, orjson.loads(r.value)["id"]) for r in sink.written] == [
            (b"a", "a"), (b"b", "b")], "one record per event, keyed by its id"
        assert ready == 200
    else:
        assert str(failure) in response.json()["detail"]
        assert ready == 503
