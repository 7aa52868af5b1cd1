"""Each service runs in an environment holding only its lock, as its image does.

The output writer gets requirements/core.txt (no MLflow, scikit-learn, pandas, numpy or
kubernetes), the input reader requirements/reader.txt (the core plus its privacy stage), the
app requirements/app.txt (no kubernetes). For each, a virtualenv is made from the lock alone
(cached: tests/packaging/lockenv.py), the project is installed without dependencies from a
wheel built by the build lock, and then, in that env's interpreter: every module of the
service's tree and `agogosml.cli` imports without pulling in a package the service must not
need, the env holds exactly the lock, and the reader and writer start with the file transport
and answer their probes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name

from agogosml.localstack.broker import free_port
from tests.packaging.lockenv import build_wheel, env_python, install_project, lock_env
from tests.packaging.test_images import LOCKS, PYPROJECT, env_prefix
from tests.packaging.test_locks import parse_lock

pytestmark = pytest.mark.timeout(1_800)  # a cold run downloads the app's few hundred MB once

FORBIDDEN_MODULES = {
    "core": ("mlflow", "sklearn", "pandas", "numpy", "scipy", "kubernetes"),
    "reader": ("mlflow", "sklearn", "pandas", "scipy", "kubernetes"),
    "app": ("kubernetes",),
    "monitor": ("kubernetes",),
}
FORBIDDEN_DISTRIBUTIONS = {
    "core": ("mlflow", "mlflow-skinny", "scikit-learn", "pandas", "numpy", "scipy", "kubernetes"),
    "reader": ("mlflow", "mlflow-skinny", "scikit-learn", "pandas", "scipy", "kubernetes"),
    "app": ("kubernetes",),
    "monitor": ("kubernetes",),
}
SHARED = ["agogosml.cli", "agogosml.envelope", "agogosml.errors", "agogosml.logs",
          "agogosml.buckets", "agogosml.retry", "agogosml.serving", "agogosml.settings"]
TREES = {
    # The reader and writer use every transport, so all of streaming/ must import.
    "input_reader": ["agogosml.services.input_reader", "agogosml.streaming", "agogosml.web"],
    "output_writer": ["agogosml.services.output_writer", "agogosml.streaming", "agogosml.web"],
    # The app's image also runs train-demo and the retraining loop (agogosml.modelloop).
    "app": ["agogosml.services.app", "agogosml.modelloop", "agogosml.demo", "agogosml.web"],
    # The monitor's image runs the monitor, and its triggers call the model loop's registry.
    "monitor": ["agogosml.services.monitor", "agogosml.monitor", "agogosml.streaming",
                "agogosml.web"],
}
VENV_EXTRAS = {"pip", "setuptools"}
"""What `python -m venv` itself puts in a Python 3.11 env, as in the images."""
TOKEN = "pipeline-token-for-env-tests-0123456789"

PROBE = """
import importlib, importlib.metadata, importlib.util, json, pkgutil, sys
roots, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
imported = []
for root in roots:
    module = importlib.import_module(root)
    imported.append(root)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), root + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({
    "imported": imported,
    "loaded": sorted({name.partition(".")[0] for name in sys.modules}),
    "findable": [name for name in forbidden if importlib.util.find_spec(name) is not None],
    "distributions": sorted(f"{d.metadata['Name']}=={d.version}"
                            for d in importlib.metadata.distributions()),
    "agogosml": importlib.import_module("agogosml").__file__,
}))
"""


@dataclass(frozen=True)
class ServiceEnv:
    lock: str
    venv: Path
    project: Path
    """Where the project is installed (PYTHONPATH): the cached venv stays as its lock made it."""
    workdir: Path

    @property
    def python(self) -> str:
        return str(env_python(self.venv))

    def environ(self, **extra: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("AGOGOSML_", "PYTHON", "VIRTUAL_ENV"))}
        return {**inherited, "PYTHONPATH": str(self.project), "PYTHONNOUSERSITE": "1",
                **extra}

    def run(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.python, *args], capture_output=True, text=True,
                              cwd=self.workdir, env=self.environ(), timeout=timeout_s,
                              check=False)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def service_env(tmp_path_factory: pytest.TempPathFactory,
                wheel: Path) -> Callable[[str], ServiceEnv]:
    made: dict[str, ServiceEnv] = {}

    def make(service: str) -> ServiceEnv:
        lock = LOCKS[service]
        if lock not in made:
            venv = lock_env([lock])
            project = tmp_path_factory.mktemp(f"project-{lock}")
            install_project(wheel, venv, project)
            made[lock] = ServiceEnv(lock, venv, project, tmp_path_factory.mktemp(f"cwd-{lock}"))
        return made[lock]

    return make


def probe(env: ServiceEnv, roots: list[str]) -> dict[str, Any]:
    forbidden = FORBIDDEN_MODULES[env.lock]
    result = env.run("-c", PROBE, json.dumps(roots), json.dumps(forbidden))
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("service", list(TREES))
def test_service_tree_imports_without_what_it_must_not_need(
        service: str, service_env: Callable[[str], ServiceEnv]) -> None:
    env = service_env(service)
    report = probe(env, [*TREES[service], *SHARED])
    assert Path(report["agogosml"]).is_relative_to(env.project), (
        "imported the clone, not the installed project")
    imported = set(report["imported"])
    assert f"agogosml.services.{service}.__main__" in imported
    assert "agogosml.cli" in imported
    assert len(imported) >= 15, imported
    forbidden = FORBIDDEN_MODULES[env.lock]
    assert not set(forbidden) & set(report["loaded"]), "imported by the service's tree"
    assert report["findable"] == [], "installed in the service's env"


@pytest.mark.parametrize("lock", sorted(set(LOCKS.values())))
def test_env_holds_exactly_its_lock(lock: str, service_env: Callable[[str], ServiceEnv]) -> None:
    env = service_env(next(s for s, name in LOCKS.items() if name == lock))
    installed: dict[str, str] = {}
    for item in probe(env, [])["distributions"]:
        name, _, version = item.partition("==")
        installed[canonicalize_name(name)] = version
    pins = {package: pin.version for package, pin in parse_lock(lock).items()}
    assert installed.pop("agogosml") == PYPROJECT["project"]["version"]
    assert set(installed) - set(pins) <= VENV_EXTRAS
    assert {p: installed.get(p) for p in pins} == pins
    assert not set(FORBIDDEN_DISTRIBUTIONS[lock]) & set(installed)


def test_cli_answers_in_the_reader_and_writer_env(
        service_env: Callable[[str], ServiceEnv]) -> None:
    """`agogosml` itself imports only what every command needs; heavy ones import lazily."""
    env = service_env("input_reader")
    result = env.run("-m", "agogosml.cli", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "replay-deadletters", "tail", "rollout"):
        assert command in result.stdout
    result = env.run("-m", "agogosml.cli", "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "input_reader" in result.stdout


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


@pytest.mark.parametrize("service", ["input_reader", "output_writer"])
def test_service_runs_in_its_env_and_answers_its_probes(
        service: str, service_env: Callable[[str], ServiceEnv], tmp_path: Path) -> None:
    env = service_env(service)
    prefix = env_prefix(service)
    port = free_port()
    environ = env.environ(**{
        f"{prefix}PORT": str(port),
        f"{prefix}FILES_DIR": str(tmp_path / "var"),
        f"{prefix}PIPELINE_TOKEN": TOKEN,
        # The reader forwards to an app that is not there: it runs, and says it is not ready.
        f"{prefix}APP_URL": f"http://127.0.0.1:{free_port()}",
        f"{prefix}SHUTDOWN_TIMEOUT_S": "5",
    })
    process = subprocess.Popen([env.python, "-m", f"agogosml.services.{service}"],
                               cwd=tmp_path, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while (health := _get(f"{base}/healthz")) is None:
            assert process.poll() is None, process.communicate()[0][-4000:]
            assert time.monotonic() < deadline, "/healthz never answered"
            time.sleep(0.1)  # polling the starting service
        assert health.status_code == 200, health.text
        assert health.json() == {"status": "alive"}
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "agogosml_" in metrics.text
        ready = httpx.get(f"{base}/readyz", timeout=10)
        checks = ready.json()["checks"]
        if service == "input_reader":
            assert checks["consuming"] is True
            assert checks["source"] is True
            assert checks["app"] is False
            assert ready.status_code == 503
        else:
            assert ready.status_code == 200, ready.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    # uvicorn re-raises the signal once it has shut down gracefully
    assert process.returncode == -signal.SIGTERM, output[-4000:]
    assert "Application shutdown complete" in output
