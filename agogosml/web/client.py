"""Posting JSON batches to the next service and telling retryable failures from rejections."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import httpcore
import httpx
from pydantic import SecretStr

from agogosml.envelope import dumps, loads
from agogosml.errors import (
    BadRequestError,
    BatchFailedError,
    CredentialsRefusedError,
    DownstreamError,
    PayloadTooLargeError,
)
from agogosml.web.auth import bearer_header

JSON_HEADERS = {"content-type": "application/json"}

TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                    httpcore.UnsupportedProtocol, httpcore.ProxyError, httpx.HTTPError)
"""What httpcore raises when the receiver cannot be reached or answers no HTTP (httpx
raises the same as httpx.HTTPError subclasses of the same names)."""


class BatchClient:
    """POSTs to one URL. Raises DownstreamError when the receiver is unreachable or
    unavailable (502, 503, 504, 429: retry later), its subclass BatchFailedError when it
    answered 500 (it failed on this batch, perhaps because of its records), and
    BadRequestError when it refused the batch itself (4xx; PayloadTooLargeError for a
    413: the same records may go through in smaller batches). A refused token (401, 403)
    is CredentialsRefusedError, a DownstreamError: no record is to blame for it.

    With a `token`, every POST carries it as a bearer token.

    Connections are renewed every `max_connection_age_s`: behind a Kubernetes Service,
    kept-alive connections would otherwise stay on the old pods after a blue/green switch.

    Requests go through httpcore's connection pool, which httpx is built on: httpx's own
    layer (its request and response models, cookies, redirects, auth) cost a reader or
    app ~0.4 ms of CPU per request, as much as the HTTP exchange itself, and none of it
    is used here. Kept-alive connections are reused as with httpx (at most 8 idle, each
    for 5 s), and TLS is set up as httpx does (SSL_CERT_FILE, SSL_CERT_DIR). Where the
    environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), requests
    go through httpx as before, which follows them.
    """

    def __init__(self, url: str, timeout_s: float, max_connection_age_s: float = 30.0,
                 token: SecretStr | None = None) -> None:
        self.url = url
        self._headers = {**JSON_HEADERS, **bearer_header(token)}
        self._encoded_headers = _encoded(self._headers)
        self.timeout_s = timeout_s
        self._extensions = _timeouts(timeout_s)
        self.max_connection_age_s = max_connection_age_s
        self._through_httpx = bool(urllib.request.getproxies())
        self._ssl_context = httpx.create_ssl_context() \
            if url.lower().startswith("https:") and not self._through_httpx else None
        self.client = self._new_client()
        self._born = time.monotonic()
        self._retired: set[asyncio.Task[None]] = set()

    def _new_client(self) -> httpcore.AsyncConnectionPool | httpx.AsyncClient:
        if self._through_httpx:
            return httpx.AsyncClient(timeout=self.timeout_s,
                                     limits=httpx.Limits(max_keepalive_connections=8))
        return httpcore.AsyncConnectionPool(ssl_context=self._ssl_context, max_connections=100,
                                            max_keepalive_connections=8, keepalive_expiry=5.0)

    def _renew_if_old(self) -> None:
        if time.monotonic() - self._born < self.max_connection_age_s:
            return
        old, self.client, self._born = self.client, self._new_client(), time.monotonic()
        # Requests still running on the old client get their full timeout to finish.
        task = asyncio.create_task(_close_later(old, self.timeout_s))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def _exchange(self, method: str, url: str, body: bytes | None,
                        headers: dict[str, str] | None, timeout_s: float) -> tuple[int, bytes]:
        """One request: the answer's status and body. `headers`: those to send, with
        None for this client's own."""
        client = self.client
        if isinstance(client, httpx.AsyncClient):
            answer = await client.request(method, url, content=body, timeout=timeout_s,
                                          headers=self._headers if headers is None else headers)
            return answer.status_code, answer.content
        response = await client.request(
            method, url, content=body,
            extensions=self._extensions if timeout_s == self.timeout_s else _timeouts(timeout_s),
            headers=self._encoded_headers if headers is None else _encoded(headers))
        return response.status, response.content

    async def post(self, document: Any, headers: dict[str, str] | None = None) -> Any:
        return await self.post_encoded(dumps(document), headers)

    async def post_encoded(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        """POST a body already encoded as JSON; return the decoded answer."""
        self._renew_if_old()
        try:
            status, content = await self._exchange(
                "POST", self.url, body, {**self._headers, **headers} if headers else None,
                self.timeout_s)
        except TRANSPORT_ERRORS as error:
            raise DownstreamError(f"{self.url} unreachable: {type(error).__name__}") from error
        if status == 500:
            raise BatchFailedError(f"{self.url} failed on the batch (500)")
        if status in (401, 403):
            raise CredentialsRefusedError(f"{self.url} refused this service's token "
                                          f"({status}): check the pipeline token")
        if status >= 500 or status == 429:
            raise DownstreamError(f"{self.url} answered {status}")
        if status == 413:
            raise PayloadTooLargeError(_detail(status, content))
        if status >= 400:
            raise BadRequestError(_detail(status, content))
        try:
            return loads(content) if content else None
        except ValueError:
            raise BatchFailedError(f"{self.url} answered {status} with a body "
                                   "that is not JSON") from None

    async def is_reachable(self, url: str) -> bool:
        try:
            status, _ = await self._exchange("GET", url, None, {}, 2.0)
        except TRANSPORT_ERRORS:
            return False
        return status == 200

    async def aclose(self) -> None:
        for task in self._retired:
            task.cancel()
        await self.client.aclose()


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]


def _timeouts(seconds: float) -> dict[str, Any]:
    return {"timeout": {"connect": seconds, "read": seconds, "write": seconds,
                        "pool": seconds}}


async def _close_later(client: httpcore.AsyncConnectionPool | httpx.AsyncClient,
                       delay_s: float) -> None:
    try:
        await asyncio.sleep(delay_s)  # grace for requests in flight on the retired client
    finally:
        await client.aclose()


def _detail(status: int, content: bytes) -> str:
    try:
        body = loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(message := body.get("error"), str):
        return message
    return f"rejected with {status}"
