"""A slot's health, as the promotion gate judges it: may it take (or keep) production traffic?

What it judges: the scoring requests the slot answered in a window of `window_s`
seconds, and nothing else. Scoring requests are `/v1/batches`, `/predict` and
`/v2/models/{name}/infer` (the `endpoint` label of `agogosml_app_requests_total`); probes,
/metrics scrapes and refused credentials are no evidence that a model serves well, so
even an app that counts them cannot pass the gate on them. On those requests:

- at least `min_requests` of them (no traffic is no evidence);
- server-error rate: statuses 500 and above, compared as numbers (an unhandled exception
  is counted by the app as the 500 it becomes);
- p99 scoring latency (`agogosml_app_predict_latency_seconds`);
- shadow agreement with production, when mirroring reports it.

Where the numbers come from is a MetricsSource:
- PerPod (here; pods.py finds a slot's pods through its EndpointSlices and reads them
  directly or through the API server's pod proxy): every ready pod is read at the start
  and at the end of the window, and the window is the sum of each pod's own
  differences, over the pods present in both readings. A pod whose counters went down
  (it restarted) or that turned unready fails the gate; a pod that left (scale-down,
  eviction, its endpoint gone or terminating) or joined is reported, not judged.
- prometheus.PrometheusMetrics: `increase()` over the window, when Prometheus is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from agogosml.errors import AgogosmlError
from agogosml.services.app import SCORING_ROUTES

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]
Sleep = Callable[[float], None]

REQUESTS = "agogosml_app_requests_total"
LATENCY = "agogosml_app_predict_latency_seconds"
SHADOW_COMPARED = "agogosml_app_shadow_compared_total"
SHADOW_AGREED = "agogosml_app_shadow_agreed_total"

COUNTERS = (REQUESTS, SHADOW_COMPARED, SHADOW_AGREED, f"{LATENCY}_bucket", f"{LATENCY}_count")
"""The series the gate reads: each only grows while its process lives."""


@dataclass(frozen=True)
class HealthLimits:
    max_error_rate: float = 0.01
    max_p99_latency_s: float = 0.25
    min_shadow_agreement: float = 0.95
    min_requests: int = 1


@dataclass(frozen=True)
class HealthVerdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    error_rate: float | None = None
    p99_latency_s: float | None = None
    shadow_agreement: float | None = None
    requests: float = 0.0
    pods: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """What a slot did during the window."""

    increases: Samples
    """Per series (name, labels): its increase, summed over the pods judged."""
    pods: int
    """How many pods' traffic `increases` holds."""
    problems: list[str] = field(default_factory=list)
    """Found while reading (a pod restarted or turned unready): each fails the gate."""
    notes: list[str] = field(default_factory=list)
    """Reported, not judged (a pod left or joined during the window)."""


class MetricsUnreadable(AgogosmlError):
    """A reading got no answer, an error status, or text that is not metrics."""


class MetricsSource(Protocol):
    def read(self, window_s: float, sleep: Sleep) -> Window:
        """Observe the slot for `window_s` seconds (`sleep` waits); raise MetricsUnreadable
        when it cannot be read."""


def parse(text: str) -> Samples:
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    except ValueError as error:
        raise MetricsUnreadable(f"not Prometheus text: {first_line(error)}") from error
    return samples


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [repr(error)])[0][:300]


def _label(labels: Labels, name: str) -> str | None:
    return dict(labels).get(name)


def _status(value: str | None) -> int:
    """A status label as a number; one that is not a number counts as a server error,
    so that a malformed series can only fail the gate, never pass it."""
    try:
        return int(value or "")
    except ValueError:
        return 599


def scoring_requests(increases: Samples) -> dict[int, float]:
    """Scoring requests by status (other endpoints are not counted)."""
    counts: dict[int, float] = {}
    for (name, labels), value in increases.items():
        if name == REQUESTS and _label(labels, "endpoint") in SCORING_ROUTES:
            status = _status(_label(labels, "status"))
            counts[status] = counts.get(status, 0.0) + value
    return counts


def _total(increases: Samples, name: str) -> float:
    return sum(value for (sample, _), value in increases.items() if sample == name)


def p99(increases: Samples) -> float | None:
    """The upper bound of the bucket holding the 99th percentile of scoring latency."""
    buckets: dict[float, float] = {}
    for (name, labels), value in increases.items():
        if name == f"{LATENCY}_bucket":
            bound = float(_label(labels, "le") or "nan")
            if not math.isnan(bound):
                buckets[bound] = buckets.get(bound, 0.0) + value
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= 0.99 * total:
            return bound
    return None


def judge(window: Window, limits: HealthLimits) -> HealthVerdict:
    by_status = scoring_requests(window.increases)
    requests = sum(by_status.values())
    failed = sum(count for status, count in by_status.items() if status >= 500)
    reasons = list(window.problems)
    if requests < limits.min_requests:
        reasons.append(f"only {requests:.0f} scoring requests in the window, need "
                       f"{limits.min_requests}")
    error_rate = failed / requests if requests > 0 else None
    if error_rate is not None and error_rate > limits.max_error_rate:
        reasons.append(f"error rate {error_rate:.3f} above {limits.max_error_rate}")
    latency = p99(window.increases)
    if latency is not None and latency > limits.max_p99_latency_s:
        reasons.append(f"p99 latency {latency:.3f}s above {limits.max_p99_latency_s}s")
    compared = _total(window.increases, SHADOW_COMPARED)
    agreement = None
    if compared > 0:
        agreement = _total(window.increases, SHADOW_AGREED) / compared
        if agreement < limits.min_shadow_agreement:
            reasons.append(f"shadow agreement {agreement:.3f} below "
                           f"{limits.min_shadow_agreement}")
    return HealthVerdict(not reasons, reasons, error_rate, latency, agreement, requests,
                   window.pods, list(window.notes))


def evaluate(source: MetricsSource, limits: HealthLimits, window_s: float,
             sleep: Sleep = time.sleep) -> HealthVerdict:
    """Metrics that cannot be read fail the gate: a slot whose pods stopped answering is
    no healthier than one answering with errors."""
    try:
        window = source.read(window_s, sleep)
    except MetricsUnreadable as error:
        return HealthVerdict(False, [f"metrics unreadable: {error}"])
    return judge(window, limits)


# --- reading every pod ------------------------------------------------------------------

@dataclass(frozen=True)
class PodEndpoint:
    """One pod of a slot as its Service's EndpointSlices list it."""

    address: str
    port: int
    pod: str | None = None
    """The pod's name (the endpoint's targetRef), when it names one."""
    ready: bool = True
    terminating: bool = False

    @property
    def key(self) -> str:
        return self.pod or f"{self.address}:{self.port}"

    @property
    def serving(self) -> bool:
        return self.ready and not self.terminating


Fetch = Callable[[PodEndpoint], str]
"""Returns one pod's /metrics text; raises MetricsUnreadable."""


def _went_down(before: Samples, after: Samples) -> str | None:
    """The first gate series that is lower (or gone) in `after`: the process restarted."""
    for (name, labels), value in before.items():
        if name in COUNTERS and after.get((name, labels), -1.0) < value:
            return name
    return None


class PerPod:
    """Reads every ready pod at the start and at the end of the window (see the module's
    docstring for pods that come, go, restart or turn unready)."""

    def __init__(self, endpoints: Callable[[], list[PodEndpoint]], fetch: Fetch,
                 what: str = "the slot") -> None:
        self.endpoints = endpoints
        self.fetch = fetch
        self.what = what

    def _current(self) -> dict[str, PodEndpoint]:
        return {endpoint.key: endpoint for endpoint in self.endpoints()}

    def _read(self, endpoint: PodEndpoint) -> Samples:
        try:
            return parse(self.fetch(endpoint))
        except MetricsUnreadable as error:
            raise MetricsUnreadable(f"pod {endpoint.key}: {error}") from error

    def read(self, window_s: float, sleep: Sleep) -> Window:
        first = {key: endpoint for key, endpoint in self._current().items()
                 if endpoint.serving}
        if not first:
            raise MetricsUnreadable(f"no ready pod behind {self.what}")
        before = {key: self._read(endpoint) for key, endpoint in first.items()}
        sleep(window_s)  # the observation window: traffic accumulates between the readings
        now = self._current()
        increases: Samples = {}
        problems: list[str] = []
        notes: list[str] = []
        judged = 0
        for key in sorted(first):
            endpoint = now.get(key)
            if endpoint is None or endpoint.terminating:
                notes.append(f"pod {key} left during the window; its traffic is not judged")
                continue
            if not endpoint.ready:
                problems.append(f"pod {key} turned unready during the window")
                continue
            after = self._read(endpoint)
            down = _went_down(before[key], after)
            if down is not None:
                problems.append(f"pod {key} restarted during the window ({down} went down)")
                continue
            judged += 1
            for series, value in after.items():
                if series[0] in COUNTERS:
                    increases[series] = increases.get(series, 0.0) + value - \
                        before[key].get(series, 0.0)
        notes += [f"pod {key} joined during the window; judged from the next window on"
                  for key in sorted(now) if key not in first and now[key].serving]
        if judged == 0 and not problems:
            problems.append(f"no pod of {self.what} was ready for the whole window")
        return Window(increases, judged, problems, notes)
