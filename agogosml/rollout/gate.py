"""The promotion gate: is a slot healthy enough to take (or keep) production traffic?

It reads the slot's own Prometheus metrics (its /metrics, or any URL that serves the
exposition format) twice, `window_s` apart, and judges the requests in between:
error rate, p99 scoring latency, and — when shadow scoring reports it — agreement
with the champion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Scrape = Callable[[], str]


@dataclass(frozen=True)
class GateLimits:
    max_error_rate: float = 0.01
    max_p99_latency_s: float = 0.25
    min_shadow_agreement: float = 0.95
    min_requests: int = 1


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    error_rate: float | None = None
    p99_latency_s: float | None = None
    shadow_agreement: float | None = None
    requests: float = 0.0


def http_scrape(url: str) -> Scrape:
    def scrape() -> str:
        response = httpx.get(url, timeout=5.0)
        response.raise_for_status()
        return response.text
    return scrape


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _total(samples: Samples, name: str, **match: str) -> float:
    return sum(value for (sample, labels), value in samples.items()
               if sample == name and all(dict(labels).get(k) == v for k, v in match.items()))


def _delta(before: Samples, after: Samples, name: str, **match: str) -> float:
    return _total(after, name, **match) - _total(before, name, **match)


def _p99(before: Samples, after: Samples, name: str) -> float | None:
    buckets: dict[float, float] = {}
    for (sample, labels), value in after.items():
        if sample == f"{name}_bucket":
            bound = float(dict(labels)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value - before.get((sample, labels), 0.0)
    if not buckets or max(buckets.values()) <= 0:
        return None
    total = buckets[float("inf")]
    for bound in sorted(buckets):
        if buckets[bound] >= 0.99 * total:
            return bound
    return None


def _server_errors(before: Samples, after: Samples) -> float:
    return sum(value - before.get((sample, labels), 0.0)
               for (sample, labels), value in after.items()
               if sample == "agogosml_app_requests_total" and dict(labels)["status"] >= "500")


def judge(before: Samples, after: Samples, limits: GateLimits) -> Verdict:
    requests = _delta(before, after, "agogosml_app_requests_total")
    failed = _server_errors(before, after)
    reasons: list[str] = []
    if requests < limits.min_requests:
        reasons.append(f"only {requests:.0f} requests in the window, need "
                       f"{limits.min_requests}")
    error_rate = failed / requests if requests else None
    if error_rate is not None and error_rate > limits.max_error_rate:
        reasons.append(f"error rate {error_rate:.3f} above {limits.max_error_rate}")
    p99 = _p99(before, after, "agogosml_app_predict_latency_seconds")
    if p99 is not None and p99 > limits.max_p99_latency_s:
        reasons.append(f"p99 latency {p99:.3f}s above {limits.max_p99_latency_s}s")
    compared = _delta(before, after, "agogosml_app_shadow_compared_total")
    agreement = None
    if compared > 0:
        agreement = _delta(before, after, "agogosml_app_shadow_agreed_total") / compared
        if agreement < limits.min_shadow_agreement:
            reasons.append(f"shadow agreement {agreement:.3f} below "
                           f"{limits.min_shadow_agreement}")
    return Verdict(not reasons, reasons, error_rate, p99, agreement, requests)


class MetricsUnreadable(Exception):
    """A scrape got no answer, an error status, or text that is not metrics."""


def _read(scrape: Scrape) -> Samples:
    try:
        return parse(scrape())
    except (httpx.HTTPError, ValueError) as error:
        raise MetricsUnreadable((str(error).splitlines() or [repr(error)])[0]) from error


def evaluate(scrape: Scrape, limits: GateLimits, window_s: float,
             sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Metrics that cannot be read fail the gate: a slot whose pods stopped answering is
    no healthier than one answering with errors."""
    try:
        before = _read(scrape)
        sleep(window_s)  # the observation window: traffic accumulates between the two scrapes
        after = _read(scrape)
    except MetricsUnreadable as error:
        return Verdict(False, [f"metrics unreadable: {error}"])
    return judge(before, after, limits)
