"""Bearer tokens between the services, and API keys for people and inference clients.

A route guarded by `Guard` answers 401 unless the request carries
`Authorization: Bearer <token>` with one of the accepted tokens. Two tokens are accepted
at once (primary and secondary) so that a token can be rotated without downtime; only the
primary is ever sent. Tokens are compared as SHA-256 digests with
`hmac.compare_digest`, so the time taken reveals neither a token nor its length, and they
never appear in logs or metrics.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter
from pydantic import AfterValidator, BeforeValidator, SecretStr

from agogosml.errors import UnauthorizedError

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
REFUSAL_LOG_INTERVAL_S = 10.0
"""At most one log line per reason this often: a flood of bad requests must not flood logs."""


def _check_token(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    token = value.get_secret_value()
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"a token needs at least {MIN_TOKEN_CHARS} characters")
    if not all("!" <= char <= "~" for char in token):
        raise ValueError("a token may hold only printable ASCII without spaces")
    return value


Token = Annotated[SecretStr, AfterValidator(_check_token)]
"""A setting holding a bearer token: long enough, and valid in an HTTP header."""
def _empty_is_unset(value: object) -> object:
    """A Secret key that is present but empty (Kubernetes renders optional keys so) is
    no token at all."""
    if value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return None
    return value


OptionalToken = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset),
                          AfterValidator(_check_token)]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Credentials:
    """The tokens a receiver accepts: a primary and, while rotating, a secondary."""

    def __init__(self, primary: SecretStr, secondary: SecretStr | None = None) -> None:
        self._digests = [_digest(primary.get_secret_value())]
        if secondary is not None:
            self._digests.append(_digest(secondary.get_secret_value()))

    def accepts(self, presented: str) -> bool:
        digest = _digest(presented)
        matched = False
        for accepted in self._digests:  # every one is compared, matched or not
            matched |= hmac.compare_digest(digest, accepted)
        return matched


def bearer_header(token: SecretStr | None) -> dict[str, str]:
    """The header a sender adds; none without a token."""
    return {} if token is None else {"authorization": f"Bearer {token.get_secret_value()}"}


BEARER = HTTPBearer(auto_error=False, description="the pipeline token, or an API key")
"""Reads `Authorization: Bearer ...` and documents the scheme in the OpenAPI schema."""


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused = Counter("agogosml_auth_refused", "Requests refused with 401",
                               ["endpoint", "reason"], registry=registry)


class Guard:
    """A FastAPI dependency (`dependencies=[Depends(guard)]`) that lets a request through
    only with an accepted bearer token. It runs before the body is read, so an
    unauthenticated client cannot make the service parse anything."""

    def __init__(self, credentials: Credentials, metrics: AuthMetrics, realm: str) -> None:
        self.credentials = credentials
        self.metrics = metrics
        self.realm = realm
        self._last_logged: dict[str, float] = {}

    # async: a plain def would cost every request a hop to the thread pool
    async def __call__(
            self, request: Request,
            authorization: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if authorization is not None and self.credentials.accepts(authorization.credentials):
            return
        reason = "missing" if authorization is None else "wrong"
        endpoint = getattr(request.scope.get("route"), "path", "other")
        self.metrics.refused.labels(endpoint=endpoint, reason=reason).inc()
        self._log(reason, endpoint, request)
        raise UnauthorizedError(f"{self.realm}: {reason} bearer token", realm=self.realm)

    def _log(self, reason: str, endpoint: str, request: Request) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(reason, -REFUSAL_LOG_INTERVAL_S) < REFUSAL_LOG_INTERVAL_S:
            return
        self._last_logged[reason] = now
        client = request.client.host if request.client else "unknown"
        log.warning("request refused: %s bearer token", reason,
                    extra={"endpoint": endpoint, "client": client, "realm": self.realm})

