"""The gate's numbers from Prometheus: `increase()` of each series over the window, through
the HTTP API (`GET <url>/api/v1/query`).

The slot's series are chosen by a label selector, by default the one the chart's
ServiceMonitor gives them (`namespace` and `service`, the slot's own Service). Under the
Prometheus Operator the app's `endpoint` label meets the target label of the same name
and is kept as `exported_endpoint`; the gate reads that one when it is there.

A series that did not exist when the window began (the first 500 of a pod, a pod that
started in the window) counts with its whole value: `increase()` alone would miss what
such a series counted before its first scrape, so a slot's first errors would go unseen.

The window must hold several scrapes for `increase()` to see traffic: with the chart's
30 s scrape interval, a window of at least 2 minutes. Pods that restarted in the window
(`resets()` above 0) fail the gate, as they do when pods are read directly.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from agogosml.rollout.health import (
    LATENCY,
    REQUESTS,
    SHADOW_AGREED,
    SHADOW_COMPARED,
    Labels,
    MetricsUnreadable,
    Samples,
    Sleep,
    Window,
    first_line,
)

DEFAULT_SELECTOR = 'namespace="{namespace}",service="{service}"'
"""Filled with {namespace}, {service} (`<fullname>-app-<slot>`), {fullname}, {slot}."""


class PrometheusMetrics:
    def __init__(self, url: str, selector: str, timeout_s: float = 10.0,
                 clock: Any = time.time) -> None:
        self.url = url.rstrip("/")
        self.selector = selector
        self.timeout_s = timeout_s
        self.clock = clock

    def query(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        """An instant vector: each series' labels and value."""
        try:
            response = httpx.get(f"{self.url}/api/v1/query",
                                 params={"query": promql, "time": f"{at:.3f}"},
                                 timeout=self.timeout_s)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise MetricsUnreadable(f"Prometheus at {self.url}: {first_line(error)}") \
                from error
        if response.status_code != 200 or body.get("status") != "success":
            raise MetricsUnreadable(f"Prometheus refused {promql!r}: {response.status_code} "
                                    f"{body.get('error', '')}"[:400])
        data = body.get("data", {})
        if data.get("resultType") != "vector":
            raise MetricsUnreadable(f"Prometheus answered {data.get('resultType')} to "
                                    f"{promql!r}, not a vector")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def read(self, window_s: float, sleep: Sleep) -> Window:
        sleep(window_s)  # the observation window, then what Prometheus saw in it
        at = self.clock()
        selector = "{" + self.selector + "}"
        window = f"{max(1, round(window_s))}s"

        def grown(name: str, by: str) -> str:
            """What each series of `name` counted in the window, summed by `by`: the
            increase of those that existed at its start, the value of those that did not."""
            series = f"{name}{selector}"
            return (f"sum by ({by}) ((increase({series}[{window}]) and {series} offset "
                    f"{window}) or ({series} unless {series} offset {window}))")

        pods = sum(value for _, value in self.query(f"count(up{selector} == 1)", at))
        increases: Samples = {}

        def add(name: str, labels: Labels, value: float) -> None:
            increases[(name, labels)] = increases.get((name, labels), 0.0) + value

        for labels, value in self.query(grown(REQUESTS, "endpoint, exported_endpoint, status"),
                                        at):
            endpoint = labels.get("exported_endpoint") or labels.get("endpoint", "")
            add(REQUESTS, (("endpoint", endpoint), ("status", labels.get("status", ""))),
                value)
        for labels, value in self.query(grown(f"{LATENCY}_bucket", "le"), at):
            add(f"{LATENCY}_bucket", (("le", labels.get("le", "")),), value)
        for name in (SHADOW_COMPARED, SHADOW_AGREED):
            for _, value in self.query(grown(name, ""), at):
                add(name, (), value)
        problems = [
            f"pod {labels.get('pod', '?')} restarted during the window "
            f"({value:.0f} counter resets)"
            for labels, value in self.query(
                f"sum by (pod) (resets({REQUESTS}{selector}[{window}])) > 0", at)]
        if pods == 0 and not problems:
            problems.append(f"Prometheus scrapes no pod matching {selector}")
        return Window(increases, int(pods), problems, [])
