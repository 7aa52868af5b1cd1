"""Actions over HTTP: `webhook` posts the firing as JSON, `retrain` asks the retrain
server (agogosml.modelloop.http) for a new challenger."""

from __future__ import annotations

import httpx
import orjson
from pydantic import SecretStr

from agogosml.monitor.triggers.actions import FiringContext
from agogosml.web.auth import bearer_header


def firing_document(action: str, context: FiringContext) -> dict[str, object]:
    return {"rule": context.rule, "action": action, "fired_at_ms": context.fired_at_ms,
            "summary": context.summary, "evidence": context.evidence}


async def _post(client: httpx.AsyncClient, url: str, body: object,
                headers: dict[str, str], timeout_s: float) -> httpx.Response | str:
    """The response, or the outcome that stands for not getting one."""
    try:
        return await client.post(url, content=orjson.dumps(body), timeout=timeout_s,
                                 headers={"content-type": "application/json", **headers})
    except httpx.TimeoutException:
        return "timeout"
    except httpx.TransportError as error:
        return f"unreachable: {type(error).__name__}"


class WebhookAction:
    """POSTs {"rule", "action", "fired_at_ms", "summary", "evidence"} to `url`; any 2xx
    is "ok". `token`, when set, is sent as a bearer token."""

    kind = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, timeout_s: float,
                 token: SecretStr | None = None) -> None:
        self.client = client
        self.url = url
        self.timeout_s = timeout_s
        self.token = token

    async def run(self, context: FiringContext) -> str:
        answer = await _post(self.client, self.url, firing_document(self.kind, context),
                             bearer_header(self.token), self.timeout_s)
        if isinstance(answer, str):
            return answer
        return "ok" if answer.is_success else f"http {answer.status_code}"


class RetrainAction:
    """POSTs {"trigger": ...} to `<url>/v1/retrain` with the retrain server's token. The
    server answers when training is done: "ok (registered v7)" or "ok (not registered)"
    when the gate refused the candidate; 503 means a retrain was already running."""

    kind = "retrain"

    def __init__(self, client: httpx.AsyncClient, url: str, token: SecretStr, trigger: str,
                 timeout_s: float) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/v1/retrain"
        self.token = token
        self.trigger = trigger
        self.timeout_s = timeout_s

    async def run(self, context: FiringContext) -> str:
        answer = await _post(self.client, self.url, {"trigger": self.trigger},
                             bearer_header(self.token), self.timeout_s)
        if isinstance(answer, str):
            return answer
        if not answer.is_success:
            return f"http {answer.status_code}"
        try:
            result = answer.json()
        except ValueError:
            return "ok (answer not JSON)"
        version = result.get("registered_version") if isinstance(result, dict) else None
        if isinstance(result, dict) and result.get("registered") is True:
            return f"ok (registered v{str(version)[:20]})"
        return "ok (not registered)"
