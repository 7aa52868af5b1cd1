"""BatchClient against a real server: how each answer maps to the pipeline's errors, the
headers it sends, and kept-alive connections reused across requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from agogosml.errors import (
    BadRequestError,
    BatchFailedError,
    CredentialsRefusedError,
    DownstreamError,
    PayloadTooLargeError,
)
from agogosml.localstack.broker import free_port
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE_AUTH, PIPELINE_TOKEN, run_server


class Seen:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.bodies: list[Any] = []
        self.client_ports: set[int] = set()


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.post("/answer/{status}")
    async def answer(status: int, request: Request) -> Response:
        seen.headers.append(dict(request.headers))
        seen.bodies.append(orjson.loads(await request.body()))
        if request.client is not None:
            seen.client_ports.add(request.client.port)
        if status == 299:  # a success whose body is not JSON
            return Response(b"not json", status_code=200)
        body = {"error": f"told to answer {status}"} if status >= 400 else {"echo": seen.bodies[-1]}
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    with run_server(app) as url:
        yield url, seen


async def test_a_success_returns_the_decoded_answer_with_the_token_and_extra_headers(
        server: tuple[str, Seen]) -> None:
    url, seen = server
    client = BatchClient(f"{url}/answer/200", 5.0, token=PIPELINE_TOKEN)
    try:
        assert await client.post({"events": [1]}) == {"echo": {"events": [1]}}
        assert await client.post_encoded(b'{"events":[]}', {"x-extra": "yes"}) \
            == {"echo": {"events": []}}
    finally:
        await client.aclose()
    assert all(headers["authorization"] == PIPELINE_AUTH["authorization"]
               and headers["content-type"] == "application/json" for headers in seen.headers)
    assert "x-extra" not in seen.headers[0]
    assert seen.headers[1]["x-extra"] == "yes"


@pytest.mark.parametrize(("status", "error", "message"), [
    (500, BatchFailedError, "failed on the batch (500)"),
    (503, DownstreamError, "answered 503"),
    (429, DownstreamError, "answered 429"),
    (401, CredentialsRefusedError, "refused this service's token (401)"),
    (413, PayloadTooLargeError, "told to answer 413"),
    (422, BadRequestError, "told to answer 422"),
    (299, BatchFailedError, "a body that is not JSON"),
])
async def test_each_failure_maps_to_its_error(server: tuple[str, Seen], status: int,
                                              error: type[Exception], message: str) -> None:
    url, _ = server
    client = BatchClient(f"{url}/answer/{status}", 5.0)
    try:
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            await client.post({"events": []})
    finally:
        await client.aclose()


async def test_an_unreachable_receiver_is_a_downstream_error() -> None:
    client = BatchClient(f"http://127.0.0.1:{free_port()}/v1/batches", 1.0)
    try:
        with pytest.raises(DownstreamError, match="unreachable: ConnectError"):
            await client.post({"events": []})
        assert not await client.is_reachable(client.url)
    finally:
        await client.aclose()


async def test_connections_are_kept_alive_and_reused(server: tuple[str, Seen]) -> None:
    url, seen = server
    client = BatchClient(f"{url}/answer/200", 5.0)
    try:
        for _ in range(20):
            await client.post({"events": []})
        assert await client.is_reachable(f"{url}/healthz")
    finally:
        await client.aclose()
    assert len(seen.client_ports) == 1, "one connection for every sequential request"


async def test_connections_are_renewed_past_their_age(server: tuple[str, Seen]) -> None:
    url, seen = server
    client = BatchClient(f"{url}/answer/200", 5.0, max_connection_age_s=0.0)
    try:
        for _ in range(3):
            await client.post({"events": []})
    finally:
        await client.aclose()
    assert len(seen.client_ports) == 3, "a new connection for each request at age 0"


async def test_with_a_proxy_in_the_environment_httpx_follows_it(
        server: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy the environment names is honoured as before (httpx reads it): here one that
    does not exist, bypassed for loopback by NO_PROXY, so requests still arrive."""
    url, seen = server
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = BatchClient(f"{url}/answer/200", 5.0, token=PIPELINE_TOKEN)
    failing = BatchClient(f"{url}/answer/413", 5.0)
    try:
        assert await client.post({"events": [2]}) == {"echo": {"events": [2]}}
        assert await client.post_encoded(b'{"events":[]}', {"x-extra": "yes"}) \
            == {"echo": {"events": []}}
        assert await client.is_reachable(f"{url}/healthz")
        with pytest.raises(PayloadTooLargeError, match="told to answer 413"):
            await failing.post({"events": []})
    finally:
        await client.aclose()
        await failing.aclose()
    assert seen.headers[0]["authorization"] == PIPELINE_AUTH["authorization"]
    assert seen.headers[1]["x-extra"] == "yes"

    monkeypatch.setenv("NO_PROXY", "")
    proxied = BatchClient(f"{url}/answer/200", 1.0)
    try:
        with pytest.raises(DownstreamError, match="unreachable"):
            await proxied.post({"events": []})
    finally:
        await proxied.aclose()
