"""The registry of services (agogosml/services/registry.py) and the copies it cannot replace.

The CLI, the local stack, the benchmark, `make images` and CI read the registry. The
services' settings, docker-compose.yml and the Helm chart keep their own copies of a
service's port, environment prefix, image name and Dockerfile target; these tests hold them
to the registry, so changing a service there fails here until every copy follows (the
Dockerfile's copies: tests/packaging/test_images.py).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from agogosml.cli import _parser
from agogosml.services.registry import ENV_PREFIXES, NAMES, SERVICES, Service, get
from tests.packaging.helm import (
    ROOT,
    Helm,
    Manifest,
    Rendered,
    env_of,
    env_values,
    fetch_helm,
    name_of,
    only_container,
)
from tests.packaging.netpol import selects
from tests.packaging.test_compose import SERVICES as COMPOSE_SERVICES
from tests.packaging.test_compose import compose_name, environment, interpolate

ALSO_READS = {"monitor": ("AGOGOSML_GDPR_",)}
"""Settings a service reads besides its own prefix's: the monitor's GDPR endpoints read the
privacy side's AGOGOSML_GDPR_* (agogosml/privacy/settings.py), as `agogosml gdpr` does."""

TAG = "0.1.0-3f2a9c1"
REGISTRY_MODULE = "agogosml.services.registry"


def test_the_registry_imports_only_the_standard_library() -> None:
    """Make and CI run it with a bare Python; the reader's and writer's images have no
    MLflow, pandas or numpy to spare."""
    probe = (f"import json, sys; import {REGISTRY_MODULE}; "
             "print(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))")
    # -S: no site-packages at all, so a third-party import fails outright.
    done = subprocess.run([sys.executable, "-S", "-E", "-c", probe], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert loaded - set(sys.stdlib_module_names) - {"__main__", "agogosml"} == set()


def test_names_prefixes_images_and_targets_are_unique() -> None:
    for field in ("name", "module", "port", "env_prefix", "image", "target"):
        values = [getattr(service, field) for service in SERVICES]
        assert len(set(values)) == len(values), field
    assert tuple(service.name for service in SERVICES) == NAMES
    assert tuple(service.env_prefix for service in SERVICES) == ENV_PREFIXES
    with pytest.raises(KeyError, match="input_reader, app, output_writer, monitor"):
        get("reader")


@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_the_module_runs_the_service(service: Service) -> None:
    assert service.module == f"agogosml.services.{service.name}"
    main = importlib.import_module(f"{service.module}.__main__").main
    assert callable(main)


def _settings_classes(service: Service) -> list[type[BaseSettings]]:
    module = importlib.import_module(f"{service.module}.settings")
    return [cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and issubclass(cls, BaseSettings)]


@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_settings_read_the_registered_prefix_and_port(service: Service) -> None:
    """Each settings class of the service keeps `env_prefix` literal (pydantic reads it
    when the class is made); it must be the registry's, and so must the port's default."""
    classes = _settings_classes(service)
    assert classes, f"{service.module}.settings defines no settings"
    for cls in classes:
        assert cls.model_config.get("env_prefix") == service.env_prefix, cls.__name__
        if "port" in cls.model_fields:
            assert cls.model_fields["port"].default == service.port, cls.__name__
    assert any("port" in cls.model_fields for cls in classes)


def _registry_command(*args: str) -> list[str]:
    """What Make and CI get from `python -m agogosml.services.registry`, run as they run it:
    from the repository root, with no site-packages."""
    done = subprocess.run([sys.executable, "-S", "-E", "-m", REGISTRY_MODULE, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    return done.stdout.splitlines()


def test_images_lists_every_target_and_image_in_flow_order() -> None:
    assert _registry_command("images") == [f"{s.target} {s.image}" for s in SERVICES]


@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_outputs_gives_every_field_of_one_service(service: Service) -> None:
    fields = dict(line.split("=", 1) for line in _registry_command("outputs", service.name))
    assert fields == {"name": service.name, "module": service.module, "port": str(service.port),
                      "env_prefix": service.env_prefix, "image": service.image,
                      "lock": service.lock, "target": service.target,
                      "auth_variable": service.auth_variable}


def test_the_cli_serves_every_registered_service(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser()
    called: list[str] = []
    for service in SERVICES:
        monkeypatch.setattr(f"{service.module}.__main__.main",
                            lambda name=service.name: called.append(name))
    for service in SERVICES:
        args = parser.parse_args(["serve", service.name])
        args.run(args)
    assert called == list(NAMES)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "reader"])


# --- docker-compose.yml -----------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_compose_runs_the_registered_image_on_the_registered_port(service: Service) -> None:
    name = compose_name(service.name)
    assert COMPOSE_SERVICES[name]["build"]["target"] == service.target
    image = interpolate(COMPOSE_SERVICES[name]["image"])
    assert image.rpartition(":")[0].rpartition("/")[2] == service.image
    published = [str(port).rsplit(":", 1)[-1] for port in COMPOSE_SERVICES[name]["ports"]]
    listening = int(environment(name).get(service.port_variable, service.port))
    assert published == [str(listening)]
    assert service.auth_variable in environment(name)


def test_compose_sets_only_variables_with_a_registered_prefix() -> None:
    for service in SERVICES:
        name = compose_name(service.name)
        allowed = (*ENV_PREFIXES, *ALSO_READS.get(service.name, ()))
        strays = [v for v in environment(name) if not v.startswith(allowed)]
        assert not strays, f"{name}: {strays} belong to no registered service"


# --- the Helm chart ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Rendered:
    return Helm(fetch_helm()).template(sets={"image.tag": TAG, "app.slots.blue.image.tag": TAG})


def _deployments(chart: Rendered, service: Service) -> list[Manifest]:
    """The chart's Deployments running the service's image."""
    return [item for item in chart.of_kind("Deployment")
            if only_container(item)["image"].rpartition(":")[0].endswith(f"/{service.image}")]


def _pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _service_selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def _url_port(url: str) -> int:
    match = re.fullmatch(r"https?://[^/:]+:(\d+)/?", url)
    assert match, url
    return int(match.group(1))


@pytest.mark.timeout(1_200)  # building Helm the first time takes minutes
@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_chart_runs_the_registered_image_port_and_prefix(chart: Rendered,
                                                         service: Service) -> None:
    deployments = _deployments(chart, service)
    assert deployments, f"no Deployment runs {service.image}"
    for deployment in deployments:
        container = only_container(deployment)
        where = name_of(deployment)
        assert [p["containerPort"] for p in container["ports"]] == [service.port], where
        assert env_values(container)[service.port_variable] == str(service.port), where
        strays = [v for v in env_of(container) if v != "HOME" and not v.startswith(
            (service.env_prefix, *ALSO_READS.get(service.name, ())))]
        assert not strays, f"{where}: {strays} are not {service.env_prefix}*"
        annotations: dict[str, Any] = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(service.port), where
        labels = _pod_labels(deployment)
        services = [s for s in chart.of_kind("Service")
                    if _service_selects(s["spec"].get("selector"), labels)]
        assert services, f"no Service selects {where}"
        for item in services:
            assert [p["port"] for p in item["spec"]["ports"]] == [service.port], name_of(item)
        policies = [p for p in chart.of_kind("NetworkPolicy")
                    if selects(p["spec"]["podSelector"], labels) and p["spec"].get("ingress")]
        assert policies, f"no NetworkPolicy admits traffic to {where}"
        for policy in policies:
            for rule in policy["spec"]["ingress"]:
                assert [p["port"] for p in rule["ports"]] == [service.port], name_of(policy)


@pytest.mark.timeout(1_200)
def test_chart_services_call_each_other_on_the_registered_ports(chart: Rendered) -> None:
    [reader] = _deployments(chart, get("input_reader"))
    [app] = _deployments(chart, get("app"))
    assert _url_port(env_values(only_container(reader))["AGOGOSML_READER_APP_URL"]) == \
        get("app").port
    assert _url_port(env_values(only_container(app))["AGOGOSML_APP_WRITER_URL"]) == \
        get("output_writer").port
