"""Posting JSON batches to the next service and telling retryable failures from rejections."""

from __future__ import annotations

from typing import Any

import httpx

from agogosml.envelope import dumps, loads
from agogosml.errors import BadRequestError, DownstreamError

JSON_HEADERS = {"content-type": "application/json"}


class BatchClient:
    """POSTs to one URL. Raises DownstreamError when the receiver is unreachable or
    failed (5xx, 429: retry later), BadRequestError when it refused the batch itself (4xx)."""

    def __init__(self, url: str, timeout_s: float, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.client = client or httpx.AsyncClient(
            timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=8)
        )

    async def post(self, document: Any) -> Any:
        try:
            response = await self.client.post(self.url, content=dumps(document),
                                              headers=JSON_HEADERS)
        except httpx.HTTPError as error:
            raise DownstreamError(f"{self.url} unreachable: {type(error).__name__}") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise DownstreamError(f"{self.url} answered {response.status_code}")
        if response.status_code >= 400:
            raise BadRequestError(_detail(response))
        return loads(response.content) if response.content else None

    async def is_reachable(self, url: str) -> bool:
        try:
            response = await self.client.get(url, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self.client.aclose()


def _detail(response: httpx.Response) -> str:
    try:
        body = loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(detail := body.get("detail"), str):
        return detail
    return f"rejected with {response.status_code}"
