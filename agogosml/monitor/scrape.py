"""The other services' own counters, read from their `/metrics`: dead letters by reason
from the input reader, failed requests and writes from the app and the writer.

The monitor shows them next to what it stores; Prometheus stays the place for their
history. A service that does not answer leaves its last figures in place, and the time
of the last good read says how fresh they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_REASONS = 20


@dataclass
class PipelineCounters:
    dead_letters: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)


def read_counters(texts: Mapping[str, str]) -> PipelineCounters:
    """Counters from each service's exposition text, keyed by service name."""
    counters = PipelineCounters()
    for service, text in texts.items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if sample.name == "agogosml_reader_records_dead_lettered_total":
                    reason = sample.labels.get("reason", "unknown")[:64]
                    if reason in counters.dead_letters or \
                            len(counters.dead_letters) < MAX_REASONS:
                        counters.dead_letters[reason] = (
                            counters.dead_letters.get(reason, 0.0) + sample.value)
                elif sample.name == "agogosml_app_requests_total" and \
                        sample.labels.get("status", "").startswith("5"):
                    key = f"{service} 5xx"
                    counters.errors[key] = counters.errors.get(key, 0.0) + sample.value
                elif sample.name in ("agogosml_writer_events_failed_total",
                                     "agogosml_reader_forward_failures_total"):
                    key = f"{service} {family.name.rsplit('_', 1)[-1]}"
                    counters.errors[key] = counters.errors.get(key, 0.0) + sample.value
    return counters


class MetricsScraper:
    def __init__(self, urls: Mapping[str, str], timeout_s: float = 2.0) -> None:
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.counters = PipelineCounters()
        self._texts: dict[str, str] = {}

    async def scrape(self) -> None:
        if not self.urls:
            return
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for service, url in self.urls.items():
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                    if len(response.content) <= MAX_BODY_BYTES:
                        self._texts[service] = response.text
                except httpx.HTTPError as error:
                    log.info("metrics unreadable", extra={"service": service,
                                                          "error": type(error).__name__})
        try:
            self.counters = read_counters(self._texts)
        except ValueError as error:  # an exposition the parser refuses
            log.warning("metrics unparsable", extra={"error": type(error).__name__})
