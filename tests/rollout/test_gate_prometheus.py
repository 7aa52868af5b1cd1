"""The gate reading a slot through Prometheus: a real Prometheus server (scripts/
fetch-prometheus.sh) scrapes real apps every second, labelled as the Prometheus Operator
labels a ServiceMonitor's targets (namespace, service, pod, and `endpoint`, the port
name, which turns the app's own `endpoint` label into `exported_endpoint`).

Each scenario has a Service of its own, so no window sees another's traffic. The window's
traffic is sent from the gate's `sleep`, which then waits until Prometheus has scraped
every pod after it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from agogosml.rollout.health import HealthLimits, HealthVerdict, evaluate
from agogosml.rollout.prometheus import DEFAULT_SELECTOR, PrometheusMetrics
from tests.conftest import Registry
from tests.rollout_apps import RunningApp, bound_socket, running_app

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).parents[2]
NAMESPACE = "prod"
WINDOW_S = 30.0
SCENARIOS = {"probed": ["probed-0"], "scoring": ["scoring-0", "scoring-1"],
             "broken": ["broken-0", "broken-1"], "restarted": ["restarted-0"]}

COUNTING_ONLY = HealthLimits(max_p99_latency_s=60.0)
"""What requests count and fail is judged here, not latency: real apps on a loaded test
machine may take longer than the production p99 limit."""


def prometheus_binary() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "fetch-prometheus.sh")], check=True,
                          capture_output=True, text=True, timeout=600)
    return done.stdout.strip().rpartition("PROMETHEUS=")[2]


@dataclass
class Scraped:
    url: str
    model_uri: str
    apps: dict[str, RunningApp] = field(default_factory=dict)
    processes: dict[str, ExitStack] = field(default_factory=dict)

    def start(self, pod: str, broken: bool = False, port: int = 0) -> RunningApp:
        process = ExitStack()
        app = process.enter_context(running_app(self.model_uri, "127.0.0.1", pod,
                                                broken=broken, port=port))
        self.processes[pod], self.apps[pod] = process, app
        return app

    def query(self, promql: str) -> list[float]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql},
                         timeout=10).json()
        assert body["status"] == "success", body
        return [float(item["value"][1]) for item in body["data"]["result"]]

    def scraped_since(self, scenario: str, moment: float, timeout_s: float = 20) -> None:
        """Until Prometheus has scraped every pod of `scenario` after `moment`."""
        deadline = time.monotonic() + timeout_s
        selector = f'{{service="agogosml-app-{scenario}"}}'
        while True:
            # timestamp() of a plain selector is the last scrape's time (of any other
            # expression, the evaluation's); up is 1 when that scrape succeeded.
            stamps = self.query(f"timestamp(up{selector})")
            up = self.query(f"up{selector}")
            if (len(stamps) == len(SCENARIOS[scenario]) and min(stamps) > moment
                    and set(up) == {1.0}):
                return
            assert time.monotonic() < deadline, f"Prometheus did not scrape {scenario}"
            time.sleep(0.1)  # polling Prometheus' last scrape times

    def gate(self, scenario: str, traffic: Callable[[], None]) -> HealthVerdict:
        def window(_: float) -> None:
            traffic()
            self.scraped_since(scenario, time.time())

        selector = DEFAULT_SELECTOR.format(namespace=NAMESPACE,
                                           service=f"agogosml-app-{scenario}")
        return evaluate(PrometheusMetrics(self.url, selector), COUNTING_ONLY, WINDOW_S,
                        sleep=window)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def scraped(mlflow_registry: Registry,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """Every scenario's apps, and Prometheus scraping them."""
    folder = tmp_path_factory.mktemp("prometheus")
    listen = bound_socket("127.0.0.1")
    port = listen.getsockname()[1]
    listen.close()
    state = Scraped(f"http://127.0.0.1:{port}", mlflow_registry.model_uri)
    try:
        targets = []
        for scenario, pods in SCENARIOS.items():
            for pod in pods:
                app = state.start(pod, broken=pod == "broken-1")
                targets.append({"targets": [f"127.0.0.1:{app.port}"], "labels": {
                    "namespace": NAMESPACE, "service": f"agogosml-app-{scenario}",
                    "pod": pod, "endpoint": "http"}})
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
            "scrape_configs": [{"job_name": "agogosml", "static_configs": targets}]}))
        with open(folder / "prometheus.log", "wb") as log, subprocess.Popen(
                [prometheus_binary(), f"--config.file={config}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT) as server:
            try:
                deadline = time.monotonic() + 60
                while not ready(state.url):
                    assert server.poll() is None, (folder / "prometheus.log").read_text()
                    assert time.monotonic() < deadline, "Prometheus did not get ready"
                    time.sleep(0.1)  # polling Prometheus' readiness
                for scenario in SCENARIOS:
                    state.scraped_since(scenario, time.time(),
                                        timeout_s=max(1.0, deadline - time.monotonic()))
                yield state
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        for process in state.processes.values():
            process.close()


def test_probe_traffic_alone_fails_the_gate(scraped: Scraped) -> None:
    verdict = scraped.gate("probed", lambda: scraped.apps["probed-0"].probe(rounds=5))
    assert verdict.reasons == ["only 0 scoring requests in the window, need 1"]
    assert verdict.pods == 1


def test_scoring_traffic_passes_the_gate(scraped: Scraped) -> None:
    def traffic() -> None:
        scraped.apps["scoring-0"].score(batches=4)
        scraped.apps["scoring-1"].score(batches=6)
        scraped.apps["scoring-1"].probe(rounds=2)

    verdict = scraped.gate("scoring", traffic)
    assert verdict.reasons == []
    assert verdict.pods == 2
    assert verdict.requests == pytest.approx(10, abs=0.5), \
        "the series began in the window: counted whole, not extrapolated"
    assert verdict.p99_latency_s is not None


def test_unhandled_errors_fail_the_gate(scraped: Scraped) -> None:
    """The broken pod's first 500s start a new series in the window: counted."""
    def traffic() -> None:
        scraped.apps["broken-0"].score(batches=20)
        scraped.apps["broken-1"].score(batches=3, expect=500)

    verdict = scraped.gate("broken", traffic)
    assert verdict.requests == pytest.approx(23, abs=0.5)
    assert verdict.error_rate == pytest.approx(3 / 23, abs=0.02)
    assert verdict.reasons[0].startswith("error rate 0.1")


def test_a_restarted_pod_fails_the_gate(scraped: Scraped) -> None:
    pod = "restarted-0"
    first = scraped.apps[pod]
    first.score(batches=5)
    scraped.scraped_since("restarted", time.time())

    def restart() -> None:
        scraped.processes.pop(pod).close()
        scraped.start(pod, port=first.port).score(batches=2)

    verdict = scraped.gate("restarted", restart)
    assert "pod restarted-0 restarted during the window (1 counter resets)" in verdict.reasons
