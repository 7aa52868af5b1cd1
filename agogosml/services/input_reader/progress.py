"""Whether the reader is making progress, for probes that tell the truth.

The reader is stalled when records wait for it (consumer lag above zero, or batches
in flight) and nothing has been committed for a while. Past `ready_limit_s` it stops
being ready (the reason is `stalled`); past `live_limit_s` it stops being alive, so
Kubernetes restarts it and the uncommitted records are redelivered. An idle reader
with nothing to read is never stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agogosml.web.probes import Problem


class ProgressWatch:
    def __init__(self, ready_limit_s: float, live_limit_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ready_limit_s = ready_limit_s
        self.live_limit_s = live_limit_s
        self._clock = clock
        self._last_progress = clock()
        self._waiting = 0

    def committed(self) -> None:
        self._last_progress = self._clock()

    def observe(self, waiting: int) -> None:
        """`waiting`: records not yet consumed plus records in flight, as last seen."""
        self._waiting = waiting
        if waiting == 0:
            self._last_progress = self._clock()

    def stalled_for(self) -> float:
        """Seconds records have waited without a commit (0 while idle)."""
        return 0.0 if self._waiting == 0 else self._clock() - self._last_progress

    def readiness_problem(self) -> Problem | None:
        return self._problem(self.ready_limit_s)

    def liveness_problem(self) -> Problem | None:
        return self._problem(self.live_limit_s)

    def _problem(self, limit_s: float) -> Problem | None:
        stalled_for = self.stalled_for()
        if stalled_for <= limit_s:
            return None
        return Problem("stalled", f"no commit for {stalled_for:.0f} s while {self._waiting} "
                                  "records wait")
