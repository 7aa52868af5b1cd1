"""The reader against a stand-in app over real HTTP, on the file transport: it retries a
failing app with backoff, pauses instead of buffering, commits only what was acknowledged,
and dead-letters what the app refuses."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agogosml.envelope import ECHO_HEADER, Event
from agogosml.errors import StoreUnavailableError
from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import DeadLetterWriter
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.input_reader.pipeline import BatchPolicy, InputReader
from agogosml.services.input_reader.progress import ProgressWatch
from agogosml.services.input_reader.service import create_app
from agogosml.services.input_reader.shadow import ShadowMirror, sampled
from agogosml.services.input_reader.transforms import RecordTransform
from agogosml.services.input_reader.validation import RecordValidator
from agogosml.streaming.files import JsonLinesSink, JsonLinesSource
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE_AUTH, PIPELINE_TOKEN, run_server


@dataclass
class StandInApp:
    """Answers the pipeline endpoint as `behaviour` decides, and remembers what it acked."""

    behaviour: Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]]
    acknowledged: list[str] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)
    calls: int = 0

    def build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "alive"}

        @app.post("/v1/batches")
        async def batches(request: Request) -> Response:
            self.calls += 1
            if request.headers.get("authorization") != PIPELINE_AUTH["authorization"]:
                return Response(b'{"error": "missing bearer token"}', status_code=401)
            document = orjson.loads(await request.body())
            events = document["events"]
            self.references.update(document.get("reference", {}))
            status, body = self.behaviour(events)
            if status == 200 and request.headers.get(ECHO_HEADER) == "predictions":
                body = {**body, "predictions": {e["id"]: len(e["id"]) % 2 for e in events}}
            if status == 200:
                refused = {item["id"] for item in body.get("rejected", [])}
                self.acknowledged.extend(e["id"] for e in events if e["id"] not in refused)
            return Response(orjson.dumps(body), status_code=status,
                            media_type="application/json")

        return app


@dataclass
class ReaderUnderTest:
    url: str
    input: Path
    deadletters: Path
    checkpoint: Path

    def metric(self, name: str) -> float:
        for line in httpx.get(f"{self.url}/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")


@pytest.fixture
def run_reader(tmp_path: Path) -> Iterator[Callable[..., ReaderUnderTest]]:
    stack: list[Any] = []

    def start(app_url: str, shadow_url: str | None = None, stall_ready_s: float = 60,
              stall_live_s: float = 300, token: SecretStr = PIPELINE_TOKEN,
              transforms: Sequence[RecordTransform] = ()) -> ReaderUnderTest:
        registry = CollectorRegistry()
        backoff = Backoff(initial_s=0.01, max_s=0.05)
        metrics = ReaderMetrics(registry)
        shadow = None if shadow_url is None else ShadowMirror(
            BatchClient(f"{shadow_url}/v1/batches", 5.0, token=token), 0.5, metrics,
            max_in_flight=64)
        reader = InputReader(
            source=JsonLinesSource(tmp_path / "in.jsonl"),
            app_client=BatchClient(f"{app_url}/v1/batches", 5.0, token=token),
            dead_letters=DeadLetterWriter(JsonLinesSink(tmp_path / "dead.jsonl"), backoff),
            validator=RecordValidator(None, 10_000, "id", None, None),
            metrics=metrics,
            policy=BatchPolicy(max_size=10, linger_s=0.0, max_in_flight=2, drain_timeout_s=2),
            backoff=backoff,
            progress=ProgressWatch(stall_ready_s, stall_live_s),
            shadow=shadow,
            transforms=transforms,
        )
        server = run_server(create_app(reader, registry, f"{app_url}/healthz"))
        url = server.__enter__()
        stack.append(server)
        return ReaderUnderTest(url, tmp_path / "in.jsonl", tmp_path / "dead.jsonl",
                               tmp_path / "in.jsonl.offset")

    yield start
    for server in reversed(stack):
        server.__exit__(None, None, None)


def write_events(path: Path, count: int) -> list[str]:
    ids = [f"e{n}" for n in range(count)]
    path.write_bytes(b"".join(orjson.dumps({"id": i, "x": n}) + b"\n"
                              for n, i in enumerate(ids)))
    return ids


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition another thread makes true


def test_a_failing_app_is_retried_without_commits_or_unbounded_buffering(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    healthy = threading.Event()
    stand_in = StandInApp(lambda events: (200, {"scored": len(events), "rejected": []})
                          if healthy.is_set() else (503, {"error": "writer down"}))
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        ids = write_events(reader.input, 100)
        wait_for(lambda: stand_in.calls >= 10, 10, "retries")
        assert not reader.checkpoint.exists(), "nothing acknowledged, nothing committed"
        assert reader.metric("agogosml_reader_batches_in_flight") <= 2
        wait_for(lambda: reader.metric("agogosml_reader_paused") == 1, 10,
                 "consumption to pause while the window stays full")
        assert reader.metric("agogosml_reader_records_consumed_total") <= 20
        healthy.set()
        wait_for(lambda: set(stand_in.acknowledged) == set(ids), 10, "every event acked")
        size = reader.input.stat().st_size
        wait_for(lambda: reader.checkpoint.exists()
                 and int(reader.checkpoint.read_text()) == size, 5, "the final commit")
    assert reader.metric("agogosml_reader_forward_failures_total") >= 10


def test_a_refused_token_blames_no_record(run_reader: Callable[..., ReaderUnderTest]) -> None:
    """A reader whose token the app refuses (401) is misconfigured; its records are not
    bad. They are retried, never dead-lettered or committed, until the token is right."""
    stand_in = StandInApp(lambda events: (200, {"scored": len(events), "rejected": []}))
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url, token=SecretStr("an-old-pipeline-token-0123456789"))
        write_events(reader.input, 30)
        wait_for(lambda: stand_in.calls >= 10, 10, "retries")
        assert not reader.deadletters.exists()
        assert not reader.checkpoint.exists()
        assert stand_in.acknowledged == []
        assert reader.metric("agogosml_reader_forward_failures_total") >= 10


def test_records_the_app_refuses_are_dead_lettered_with_its_reason(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    def refuse_odd(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        odd = [e for e in events if int(e["id"][1:]) % 2]
        return 200, {"scored": len(events) - len(odd),
                     "rejected": [{"id": e["id"], "reason": "amount: not a number"} for e in odd]}

    stand_in = StandInApp(refuse_odd)
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        ids = write_events(reader.input, 20)
        wait_for(lambda: reader.deadletters.exists()
                 and len(reader.deadletters.read_bytes().splitlines()) == 10, 10, "10 letters")
    letters = [orjson.loads(line) for line in reader.deadletters.read_bytes().splitlines()]
    assert {letter["reason"] for letter in letters} == {"rejected_by_app"}
    assert {letter["detail"] for letter in letters} == {"amount: not a number"}
    assert sorted(stand_in.acknowledged) == sorted(i for i in ids if int(i[1:]) % 2 == 0)


def test_a_batch_the_app_refuses_outright_is_dead_lettered_not_retried(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    stand_in = StandInApp(lambda events: (422, {"error": "model expects 8 columns"}))
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        write_events(reader.input, 5)
        wait_for(lambda: reader.deadletters.exists()
                 and len(reader.deadletters.read_bytes().splitlines()) == 5, 10, "5 letters")
        assert stand_in.calls == 1
    letter = orjson.loads(reader.deadletters.read_bytes().splitlines()[0])
    assert letter["detail"] == "model expects 8 columns"


def acknowledge_all(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return 200, {"scored": len(events), "rejected": []}


def test_shadow_traffic_is_a_stable_sample_and_never_blocks_production(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    production = StandInApp(acknowledge_all)
    shadow = StandInApp(acknowledge_all)
    broken_shadow = StandInApp(lambda events: (503, {"error": "challenger down"}))
    with run_server(production.build()) as app_url, \
            run_server(shadow.build()) as shadow_url:
        reader = run_reader(app_url, shadow_url)
        ids = write_events(reader.input, 200)
        wanted = {i for i in ids if sampled(i, 0.5)}
        wait_for(lambda: set(shadow.acknowledged) == wanted, 10, "the shadow sample")
        assert set(production.acknowledged) == set(ids)
        assert shadow.references == {i: len(i) % 2 for i in wanted}, \
            "the sample travels with production's predictions for the preview to compare"
    assert 60 < len(wanted) < 140, "about half the events are mirrored"

    with run_server(production.build()) as app_url, \
            run_server(broken_shadow.build()) as shadow_url:
        reader.input.unlink()
        reader.checkpoint.unlink()
        other = run_reader(app_url, shadow_url)
        ids = write_events(other.input, 100)
        size = other.input.stat().st_size
        wait_for(lambda: other.checkpoint.exists()
                 and int(other.checkpoint.read_text()) == size, 10, "production commits")
        wait_for(lambda: other.metric("agogosml_reader_shadow_failures_total") > 0, 10,
                 "the shadow failures to be counted")


def events_with(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))


def letters_in(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] \
        if path.exists() else []


def test_duplicate_ids_in_a_batch_are_told_apart_by_position(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    def refuse_the_flagged(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        refused = [{"index": n, "id": e["id"], "reason": "flagged"}
                   for n, e in enumerate(events) if e["payload"].get("flag")]
        return 200, {"scored": len(events) - len(refused), "rejected": refused}

    stand_in = StandInApp(refuse_the_flagged)
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        events_with(reader.input, [{"id": "twin", "n": 0}, {"id": "twin", "n": 1, "flag": 1},
                                   {"id": "solo", "n": 2}])
        wait_for(lambda: len(letters_in(reader.deadletters)) == 1, 10, "one dead letter")
    letter = letters_in(reader.deadletters)[0]
    assert orjson.loads(base64.b64decode(letter["original"])) == {"id": "twin", "n": 1,
                                                                  "flag": 1}


def fail_on_poison(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    if any(e["payload"].get("poison") for e in events):
        return 500, {"error": "the model crashed"}
    return 200, {"scored": len(events), "rejected": []}


def test_records_the_app_keeps_failing_on_are_isolated_and_the_rest_flows(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    stand_in = StandInApp(fail_on_poison)
    items = [{"id": f"e{n}", "poison": n in (3, 14)} for n in range(20)]
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        events_with(reader.input, items)
        size = reader.input.stat().st_size
        wait_for(lambda: reader.checkpoint.exists()
                 and int(reader.checkpoint.read_text()) == size, 20, "every offset committed")
        assert reader.metric("agogosml_reader_batches_split_total") > 0
    letters = letters_in(reader.deadletters)
    assert sorted(orjson.loads(base64.b64decode(x["original"]))["id"] for x in letters) \
        == ["e14", "e3"]
    assert {x["reason"] for x in letters} == {"app_error"}
    assert sorted(stand_in.acknowledged) == sorted(f"e{n}" for n in range(20) if n not in (3, 14))


def test_an_app_that_fails_everything_is_an_outage_and_nothing_is_dead_lettered(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    healthy = threading.Event()
    stand_in = StandInApp(lambda events: acknowledge_all(events) if healthy.is_set()
                          else (500, {"error": "broken deployment"}))
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        ids = write_events(reader.input, 10)
        wait_for(lambda: reader.metric("agogosml_reader_batches_split_total") >= 3, 10,
                 "the batch to be split down to single records")
        wait_for(lambda: stand_in.calls >= 40, 20, "single records to be retried")
        assert not reader.deadletters.exists(), "no record is blamed while nothing succeeds"
        assert not reader.checkpoint.exists()
        healthy.set()
        wait_for(lambda: set(stand_in.acknowledged) == set(ids), 10, "every event acked")


def test_a_store_outage_in_a_transform_is_retried_and_blames_no_record(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    """A privacy stage whose subject key store is down (StoreUnavailableError) holds the
    batch back and retries; nothing is dead-lettered or committed until the store is back."""
    store_up = threading.Event()
    attempts: list[str] = []

    def stage(event: Event) -> Event:
        attempts.append(event.id)
        if not store_up.is_set():
            raise StoreUnavailableError("the subject key store is unavailable")
        return event

    stand_in = StandInApp(acknowledge_all)
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url, transforms=(stage,))
        ids = write_events(reader.input, 10)
        wait_for(lambda: len(attempts) >= 5, 10, "the outage to be retried")
        assert stand_in.calls == 0
        assert not reader.deadletters.exists(), "no record is blamed for the outage"
        assert not reader.checkpoint.exists()
        store_up.set()
        wait_for(lambda: set(stand_in.acknowledged) == set(ids), 10, "every event acked")


def test_a_stalled_reader_stops_being_ready_then_alive(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    stand_in = StandInApp(lambda events: (503, {"error": "writer down"}))
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url, stall_ready_s=0.5, stall_live_s=1.0)
        assert httpx.get(f"{reader.url}/healthz").status_code == 200
        write_events(reader.input, 30)
        wait_for(lambda: httpx.get(f"{reader.url}/readyz").json().get("reason") == "stalled",
                 10, "readiness to report the stall")
        wait_for(lambda: httpx.get(f"{reader.url}/healthz").status_code == 503, 10,
                 "liveness to fail")
        assert httpx.get(f"{reader.url}/healthz").json()["reason"] == "stalled"
        assert reader.metric("agogosml_reader_stalled") == 1


def test_a_batch_above_the_apps_request_limit_is_sent_in_smaller_batches(
        run_reader: Callable[..., ReaderUnderTest]) -> None:
    def at_most_three(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        if len(events) > 3:
            return 413, {"error": "at most 3 events per request"}
        return acknowledge_all(events)

    stand_in = StandInApp(at_most_three)
    with run_server(stand_in.build()) as app_url:
        reader = run_reader(app_url)
        ids = write_events(reader.input, 25)
        wait_for(lambda: sorted(stand_in.acknowledged) == sorted(ids), 10, "every event acked")
    assert not reader.deadletters.exists()
