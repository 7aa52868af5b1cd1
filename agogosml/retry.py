"""Retrying an operation with capped exponential backoff and jitter until it succeeds
or the caller gives up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from agogosml.errors import DownstreamError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.1
    max_s: float = 5.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """A random delay between half and all of the capped exponential bound."""
        bound = min(self.max_s, self.initial_s * self.multiplier ** attempt)
        return random.uniform(bound / 2, bound)


async def retry_until_done(
    operation: Callable[[], Awaitable[T]], backoff: Backoff, giving_up: asyncio.Event,
    what: str, on_failure: Callable[[], None] = lambda: None,
) -> T:
    """Run `operation` until it stops raising DownstreamError.

    Any other error propagates at once. Once `giving_up` is set, the next failure
    propagates too, so the caller does not treat the work as done.
    """
    attempt = 0
    while True:
        try:
            return await operation()
        except DownstreamError as error:
            on_failure()
            await wait_to_retry(error, backoff, attempt, giving_up, what)
            attempt += 1


async def wait_to_retry(error: DownstreamError, backoff: Backoff, attempt: int,
                        giving_up: asyncio.Event, what: str) -> None:
    """After failed attempt number `attempt` (from 0): log it and wait the backoff's delay,
    cut short by `giving_up`. Once `giving_up` is set, re-raises `error` instead."""
    if giving_up.is_set():
        raise error
    delay = backoff.delay(attempt)
    log.warning("%s failed, retrying", what,
                extra={"error": str(error), "attempt": attempt + 1,
                       "retry_in_s": round(delay, 3)})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(giving_up.wait(), delay)
