"""`docker compose up` (docker-compose.yml, deploy/, the Grafana dashboard): valid Compose,
started in a working order, wired like `make run`, and observed by Prometheus and Grafana
through metrics the services really export.

The file is checked against the Compose Specification's JSON Schema, vendored in
tests/packaging/compose-spec/ (compose-spec/compose-spec, schema/compose-spec.json,
Apache-2.0; version and source in its README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from agogosml.localstack.stack import pipeline_env
from agogosml.modelloop.cli import add_parsers as add_modelloop_parsers
from agogosml.modelloop.http import RetrainServerSettings
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.monitor.drift import metrics as drift_metrics
from agogosml.monitor.references import ReferenceProfiles
from agogosml.monitor.state import MonitorState
from agogosml.monitor.store import AsyncEventStore, SqliteEventStore
from agogosml.monitor.triggers.rules import RetrainConfig, load_rules
from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.keyfile import new_keyring_text
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy
from agogosml.privacy.settings import GdprSettings
from agogosml.services.app.metrics import AppMetrics
from agogosml.services.input_reader.metrics import ReaderMetrics
from agogosml.services.monitor.metrics import MonitorCollector
from agogosml.services.output_writer.metrics import WriterMetrics
from agogosml.services.registry import SERVICES as REGISTRY
from tests.packaging.test_images import (
    SECRET_NAME,
    SETTINGS,
    default_port,
    env_prefix,
    healthcheck_command,
    stage,
    stages,
)

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DASHBOARD_PATH = ROOT / "charts" / "agogosml" / "dashboards" / "agogosml.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
PROMETHEUS: dict[str, Any] = yaml.safe_load(
    (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


REQUIRED_FROM_CALLER = re.compile(r"\$\{\w+:\?[^}]*\}")


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set in the environment: the defaults."""
    def substitute(match: re.Match[str]) -> str:
        assert match.group(2) is not None, f"{match.group(0)} has no default"
        return match.group(2)

    return re.sub(r"\$\{(\w+):-([^}]*)\}", substitute, value).replace("$$", "$")


def built_service(name: str) -> str | None:
    """The agogosml service whose Dockerfile target builds this compose service's image,
    if any."""
    image = SERVICES[name]["image"]
    for other in SERVICES.values():
        if other.get("image") == image and "build" in other:
            assert other["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
            [service] = [s.name for s in REGISTRY if s.target == other["build"]["target"]]
            return service
    return None


def compose_name(service: str) -> str:
    """The compose service running an agogosml service with its own entrypoint."""
    [name] = [n for n, s in SERVICES.items()
              if "build" in s and built_service(n) == service and "entrypoint" not in s]
    return name


def environment(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a map"
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def listening_port(service: str) -> int:
    override = environment(compose_name(service)).get(f"{env_prefix(service)}PORT")
    return int(override) if override else default_port(service)


def has_healthcheck(name: str) -> bool:
    """Its own healthcheck, or the image's HEALTHCHECK when it runs the image's service."""
    check = SERVICES[name].get("healthcheck")
    if check is not None:
        return bool(check.get("test")) and not check.get("disable", False)
    service = built_service(name)
    return (service is not None and "entrypoint" not in SERVICES[name]
            and bool(healthcheck_command(service)))


def depends_on(name: str) -> dict[str, str]:
    return {dependency: spec["condition"]
            for dependency, spec in SERVICES[name].get("depends_on", {}).items()}


def url_host_port(url: str) -> str:
    match = re.fullmatch(r"https?://([^/:]+:\d+)/?", url)
    assert match, url
    return match.group(1)


def test_valid_against_the_compose_specification() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec" / "compose-spec.json").read_text())
    assert "draft-07" in schema["$schema"]
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(COMPOSE)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_image_is_pinned(name: str) -> None:
    image = interpolate(SERVICES[name]["image"])
    repository, _, tag = image.rpartition(":")
    assert "/" not in tag, f"{image} has no tag"
    assert repository, f"{image} has no tag"
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image}: pin a release, never latest"


def test_agogosml_images_are_built_here_never_pulled() -> None:
    """Tagged with the project's version; services that only run them never pull one of
    the same name from a registry."""
    for name, service in SERVICES.items():
        if built_service(name) is None:
            continue
        assert interpolate(service["image"]).endswith(f":{VERSION}"), name
        if "build" in service:
            assert service["pull_policy"] == "build", name
            build = service["build"]
            assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
            args = {k: interpolate(v) for k, v in service["build"]["args"].items()}
            assert args["VERSION"] == VERSION, name
            assert "GIT_SHA" in args
        else:
            assert service["pull_policy"] == "never", name


def test_healthy_dependencies_have_healthchecks() -> None:
    for name in SERVICES:
        for dependency, condition in depends_on(name).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition == "service_healthy":
                assert has_healthcheck(dependency), f"{name} waits for {dependency} to be healthy"


def test_services_restart_and_servers_are_health_checked() -> None:
    for name, service in SERVICES.items():
        assert service.get("restart") in ("no", "unless-stopped"), name
        if service.get("ports") or service.get("restart") == "unless-stopped":
            if service.get("healthcheck", {}).get("disable"):
                assert not service.get("ports"), f"{name} serves a port: probe it"
                continue
            assert has_healthcheck(name), name


def test_commands_run_in_an_agogosml_image_bring_their_own_healthcheck() -> None:
    """The image's HEALTHCHECK probes the service's /healthz: wrong for anything else."""
    for name, service in SERVICES.items():
        if built_service(name) is not None and "entrypoint" in service:
            assert "healthcheck" in service, name


def test_one_shot_jobs_finish_before_what_needs_them() -> None:
    jobs = {name for name, s in SERVICES.items() if s.get("restart") == "no"}
    assert jobs >= {"create-topics", "train-demo"}
    waited_for = set()
    for name in SERVICES:
        for dependency, condition in depends_on(name).items():
            if dependency in jobs:
                assert condition == "service_completed_successfully", (name, dependency)
                waited_for.add(dependency)
    assert waited_for == jobs


@pytest.mark.parametrize("name", [n for n in SERVICES if built_service(n) is not None])
def test_agogosml_containers_are_hardened(name: str) -> None:
    service = SERVICES[name]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["init"] is True, "an init forwards SIGTERM for a graceful shutdown"
    assert "user" not in service, "runs as the image's non-root user"


OWN_SETTINGS = {
    "input_reader": ("AGOGOSML_READER_PRIVACY_", "AGOGOSML_READER_SUBJECT_KEYS_"),
    "monitor": ("AGOGOSML_MONITOR_GDPR_", "AGOGOSML_GDPR_"),
}
"""Settings naming files mounted into one service (its policy, its keys) or its privacy
store: `make run` gives every process all of them, compose only the service that reads
them. create-topics and the producer share the reader's settings, and would refuse a
policy or keyring path they have no file at."""


def _own(service: str, names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(OWN_SETTINGS.get(service, ()))}


def test_services_get_the_settings_make_run_gives_them() -> None:
    stack = set(pipeline_env("kafka:19092", "http://mlflow:5000"))
    owned = {name for service in OWN_SETTINGS for name in _own(service, stack)}
    assert owned, "make run gives the privacy settings"
    shared = stack - owned
    for service in SETTINGS:
        env = set(environment(compose_name(service)))
        assert shared | _own(service, stack) <= env, service
        assert not (owned - _own(service, stack)) & env, f"{service}: another's files"
    for name in ("create-topics", "producer"):
        env = set(environment(name))
        assert shared <= env, name
        assert not owned & env, name


def test_services_reach_each_other_where_they_listen() -> None:
    env = environment(compose_name("app"))
    assert url_host_port(env["AGOGOSML_READER_APP_URL"]) == (
        f"{compose_name('app')}:{listening_port('app')}")
    assert url_host_port(env["AGOGOSML_APP_WRITER_URL"]) == (
        f"{compose_name('output_writer')}:{listening_port('output_writer')}")
    advertised = environment("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    for variable in ("AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS",
                     "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS"):
        assert f"//{env[variable]}" in advertised, variable
    mlflow = SERVICES["mlflow"]["command"]
    tracking = f"mlflow:{mlflow[mlflow.index('--port') + 1]}"
    assert url_host_port(env["AGOGOSML_APP_MLFLOW_TRACKING_URI"]) == tracking
    assert tracking in mlflow[mlflow.index("--allowed-hosts") + 1].split(",")
    train = SERVICES["train-demo"]["command"]
    assert train[train.index("--tracking-uri") + 1] == env["AGOGOSML_APP_MLFLOW_TRACKING_URI"]


def _mount_specs(name: str) -> dict[str, dict[str, Any]]:
    """Mount target -> {source (volume name or ./path), read_only, subpath} of a service,
    from the short syntax (source:target[:ro]) or the long one."""
    mounts = {}
    for volume in SERVICES[name].get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = {
                "source": volume["source"], "read_only": volume.get("read_only", False),
                "subpath": (volume.get("volume") or {}).get("subpath")}
            continue
        source, target, *options = volume.split(":")
        mounts[target] = {"source": source, "read_only": "ro" in options, "subpath": None}
    return mounts


def _mounts(name: str) -> dict[str, str]:
    """Mount target -> source (volume name or ./path) of a service."""
    return {target: spec["source"] for target, spec in _mount_specs(name).items()}


def test_the_app_can_read_the_model_training_wrote() -> None:
    """train-demo keeps the demo model's artifacts under --artifacts (file:// URIs in the
    registry), so the app must see that directory at the same path."""
    train = SERVICES["train-demo"]["command"]
    artifacts = PurePosixPath(train[train.index("--artifacts") + 1])
    [(target, volume)] = [(t, s) for t, s in _mounts("train-demo").items()
                          if artifacts.is_relative_to(t)]
    assert _mounts(compose_name("app")).get(target) == volume, f"the app must mount {target}"
    assert volume in COMPOSE["volumes"]


def test_reader_schema_is_the_demo_schema_installed_in_the_image() -> None:
    base = stage("base")
    python = re.search(r":(\d+\.\d+)\.", stages()[0].base)
    assert python
    site_packages = f"{base.env()['VIRTUAL_ENV']}/lib/python{python.group(1)}/site-packages"
    schema = environment(compose_name("input_reader"))["AGOGOSML_READER_SCHEMA_PATH"]
    relative = PurePosixPath(schema).relative_to(site_packages)
    assert (ROOT / relative).is_file()
    assert relative.parts[0] in tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def test_files_compose_mounts_exist() -> None:
    for name in SERVICES:
        for source in _mounts(name).values():
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_service_where_it_listens() -> None:
    targets = {target for job in PROMETHEUS["scrape_configs"]
               for config in job.get("static_configs", []) for target in config["targets"]}
    for service in SETTINGS:
        name = compose_name(service)
        assert f"{name}:{listening_port(service)}" in targets, service
        metrics_path = {job["job_name"]: job.get("metrics_path", "/metrics")
                        for job in PROMETHEUS["scrape_configs"]}
        assert metrics_path[name] == "/metrics"


def test_grafana_shows_the_dashboard_from_this_prometheus() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"]
    assert source["type"] == "prometheus"
    assert url_host_port(source["url"]) == "prometheus:9090"
    assert any(p.endswith(":9090") for p in SERVICES["prometheus"]["ports"])
    [provider] = yaml.safe_load((provisioning / "dashboards" / "agogosml.yml").read_text())[
        "providers"]
    grafana = {source: target for target, source in _mounts("grafana").items()}
    dashboard_target = PurePosixPath(grafana[f"./{DASHBOARD_PATH.relative_to(ROOT)}"])
    assert dashboard_target.parent == PurePosixPath(provider["options"]["path"])
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_no_secrets_inline() -> None:
    """A secret comes from an env file, compose secrets, or the caller's environment with
    no default (`${NAME:?why}`), as the pipeline token does."""
    for name in SERVICES:
        secrets = [k for k, v in environment(name).items()
                   if SECRET_NAME.search(k) and not REQUIRED_FROM_CALLER.fullmatch(v)]
        assert not secrets, f"{name}: put {secrets} in an env file or compose secrets"


def test_every_service_has_the_pipeline_token() -> None:
    for service, prefix in (("input_reader", "READER"), ("app", "APP"),
                            ("output_writer", "WRITER")):
        value = environment(compose_name(service))[f"AGOGOSML_{prefix}_PIPELINE_TOKEN"]
        assert value.startswith("${AGOGOSML_PIPELINE_TOKEN:?"), service


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def registered_series() -> set[str]:
    """Every series name the services' metrics expose, labelled or not yet observed."""
    registry = CollectorRegistry()
    ReaderMetrics(registry)
    AppMetrics(registry)
    WriterMetrics(registry)
    # The monitor's come from its state at scrape time: with nothing watched yet, its drift
    # families (named in agogosml.monitor.drift.metrics, gauges) do not appear.
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteEventStore(Path(folder) / "events.db")
        idle = MonitorState(AsyncEventStore(store), ReferenceProfiles(_no_profile))
        registry.register(MonitorCollector(idle))
        families = list(registry.collect())
        store.close()
    drift = {drift_metrics.SCORE, drift_metrics.PVALUE, drift_metrics.DETECTOR_LEVEL,
             drift_metrics.DETECTOR_ALARMS}
    return drift | {family.name + suffix for family in families
                    for suffix in _SUFFIXES[family.type]}


def _no_profile(model_name: str, model_version: str) -> ReferenceProfile:
    raise LookupError(f"{model_name} {model_version}")


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in DASHBOARD["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _expressions() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel.get("targets", [])]


def test_dashboard_queries_only_metrics_the_services_export() -> None:
    registered = registered_series()
    for expression in _expressions():
        used = set(re.findall(r"\bagogosml_\w+", expression))
        assert used, f"not an agogosml metric: {expression}"
        assert used <= registered, f"{sorted(used - registered)} in {expression}"


def test_dashboard_shows_throughput_latency_errors_dead_letters_lag_and_predictions() -> None:
    used = {name for e in _expressions() for name in re.findall(r"\bagogosml_\w+", e)}
    assert used >= {
        "agogosml_reader_records_consumed_total", "agogosml_writer_events_written_total",
        "agogosml_app_predict_latency_seconds_bucket",
        "agogosml_reader_forward_latency_seconds_bucket",
        "agogosml_writer_sink_latency_seconds_bucket",
        "agogosml_app_requests_total", "agogosml_reader_forward_failures_total",
        "agogosml_writer_events_failed_total", "agogosml_reader_records_dead_lettered_total",
        "agogosml_reader_consumer_lag", "agogosml_app_predictions_total",
    }
    for expression in _expressions():
        if "_bucket" in expression:
            assert expression.startswith("histogram_quantile("), expression


def test_dashboard_works_with_any_prometheus_datasource() -> None:
    """Compose provisions one datasource, a Helm install has its own: panels use a variable."""
    [variable] = [v for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == reference, panel["title"]
            assert all(t["datasource"] == reference for t in panel["targets"]), panel["title"]
    assert DASHBOARD["uid"] == "agogosml"


def test_commands_that_need_the_model_stack_run_on_the_app_image() -> None:
    """The reader and writer images carry no numpy, pandas or MLflow (requirements/core.txt):
    the demo producer and the demo training run on the app image."""
    for name, service in SERVICES.items():
        command = " ".join(str(part) for part in service.get("command", []))
        if "produce-demo" in command or "train-demo" in command:
            assert "agogosml-app:" in service["image"], name


def test_dashboard_shows_drift_and_live_performance_per_model_version() -> None:
    expressions = _expressions()
    used = {name for e in expressions for name in re.findall(r"\bagogosml_\w+", e)}
    assert used >= {
        "agogosml_drift_score", "agogosml_drift_pvalue", "agogosml_drift_detector_level",
        "agogosml_monitor_drift_alarms_total", "agogosml_monitor_performance",
        "agogosml_monitor_labelled_events", "agogosml_monitor_events_stored_total"}
    for expression in expressions:
        if re.search(r"agogosml_(drift|monitor_(performance|labelled|drift))", expression):
            assert "model_version" in expression, f"one line per model version: {expression}"
    performance = " ".join(e for e in expressions if "agogosml_monitor_performance" in e)
    for metric in ("accuracy", "precision", "recall", "roc_auc", "log_loss"):
        assert metric in performance, metric


# --- the monitor and the retrain server -------------------------------------------------


def _settings_field(settings: type[Any], variable: str) -> bool:
    prefix = str(settings.model_config["env_prefix"])
    return variable.startswith(prefix) and \
        variable.removeprefix(prefix).lower() in settings.model_fields


def test_the_monitor_gets_only_settings_it_has() -> None:
    """Every AGOGOSML_MONITOR_ variable compose sets is a field of the monitor's settings
    (a misspelt one would be ignored), and the monitor gets what it needs here."""
    monitor = compose_name("monitor")
    env = environment(monitor)
    mine = [name for name in env if name.startswith("AGOGOSML_MONITOR_")]
    assert mine
    strays = [name for name in mine if not _settings_field(SETTINGS["monitor"], name)]
    assert not strays, f"not settings of the monitor: {strays}"
    assert env["AGOGOSML_MONITOR_API_TOKEN"].startswith("${AGOGOSML_PIPELINE_TOKEN:?")
    assert env["AGOGOSML_MONITOR_SOURCE"] == "kafka"
    assert f"//{env['AGOGOSML_MONITOR_KAFKA_BOOTSTRAP_SERVERS']}" in \
        environment("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    assert env["AGOGOSML_MONITOR_TRACKING_URI"] == env["AGOGOSML_APP_MLFLOW_TRACKING_URI"]
    assert any(str(port).endswith(":8005") and str(port).startswith("127.0.0.1:")
               for port in SERVICES[monitor]["ports"])


def test_the_monitor_scrapes_the_services_where_they_listen() -> None:
    urls = json.loads(environment(compose_name("monitor"))["AGOGOSML_MONITOR_SCRAPE_URLS"])
    assert set(urls) == {"input_reader", "app", "output_writer"}
    for service, url in urls.items():
        assert url == f"http://{url_host_port(url.removesuffix('/metrics'))}/metrics"
        assert url_host_port(url.removesuffix("/metrics")) == (
            f"{compose_name(service)}:{listening_port(service)}")


def test_the_monitor_keeps_its_store_on_a_volume() -> None:
    monitor = compose_name("monitor")
    url = environment(monitor)["AGOGOSML_MONITOR_STORE_URL"]
    assert url.startswith("sqlite:////")
    store = PurePosixPath(url.removeprefix("sqlite:///"))
    [(target, volume)] = [(t, s) for t, s in _mounts(monitor).items()
                          if store.is_relative_to(t)]
    assert volume in COMPOSE["volumes"], f"{target} must be a named volume"


def _retrain_server_command() -> argparse.Namespace:
    service = SERVICES["retrain-server"]
    assert service["entrypoint"] == ["agogosml"]
    assert "agogosml-app:" in service["image"], "training needs the app image's libraries"
    parser = argparse.ArgumentParser(prog="agogosml")
    add_modelloop_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(service["command"])


def test_the_retrain_server_requires_its_token_and_the_monitor_sends_it() -> None:
    server = environment("retrain-server")
    assert set(server) == {"AGOGOSML_RETRAIN_TOKEN"}
    assert all(_settings_field(RetrainServerSettings, name) for name in server)
    monitor = environment(compose_name("monitor"))
    assert monitor["AGOGOSML_MONITOR_RETRAIN_TOKEN"] == server["AGOGOSML_RETRAIN_TOKEN"]
    assert REQUIRED_FROM_CALLER.fullmatch(server["AGOGOSML_RETRAIN_TOKEN"])
    args = _retrain_server_command()
    assert args.command == "retrain-server"
    assert monitor["AGOGOSML_MONITOR_RETRAIN_URL"] == f"http://retrain-server:{args.port}"
    assert args.host == "0.0.0.0"
    assert args.tracking_uri == environment(compose_name("app"))[
        "AGOGOSML_APP_MLFLOW_TRACKING_URI"]
    assert "ports" not in SERVICES["retrain-server"], "only the monitor calls it"


def test_the_retrain_server_trains_on_the_data_set_train_demo_writes() -> None:
    """train-demo keeps the demo data set under <artifacts>/datasets/ (rows 20000, seed 7,
    agogosml/demo/train.py); the retrain server must see that file."""
    args = _retrain_server_command()
    train = SERVICES["train-demo"]["command"]
    artifacts = PurePosixPath(train[train.index("--artifacts") + 1])
    assert PurePosixPath(args.dataset) == artifacts / "datasets" / \
        "demo-transactions-20000-7.csv"
    [(target, volume)] = [(t, s) for t, s in _mounts("train-demo").items()
                          if artifacts.is_relative_to(t)]
    assert _mounts("retrain-server").get(target) == volume
    assert depends_on("retrain-server")["train-demo"] == "service_completed_successfully"


def test_the_monitor_rules_are_mounted_and_retrain_on_the_retrain_server() -> None:
    monitor = compose_name("monitor")
    rules_path = PurePosixPath(environment(monitor)["AGOGOSML_MONITOR_RULES_PATH"])
    mounts = _mounts(monitor)
    source = mounts[str(rules_path.parent)]
    rules = load_rules(ROOT / source / rules_path.name)
    retrain = [rule.action for rule in rules.rules if isinstance(rule.action, RetrainConfig)]
    assert retrain
    for action in retrain:
        assert str(action.url).rstrip("/") == environment(monitor)["AGOGOSML_MONITOR_RETRAIN_URL"]


# --- privacy ------------------------------------------------------------------------------


def _in_volume(name: str, path: str) -> tuple[str, PurePosixPath, dict[str, Any]]:
    """(the named volume, the path inside it, the mount) of a file a service sees at `path`."""
    found = [(PurePosixPath(target), spec) for target, spec in _mount_specs(name).items()
             if PurePosixPath(path).is_relative_to(target)]
    assert found, f"{name}: {path} is on no mount"
    target, spec = max(found, key=lambda item: len(item[0].parts))
    assert spec["source"] in COMPOSE["volumes"], f"{name}: {path} must be on a named volume"
    inside = PurePosixPath(spec["subpath"] or ".") / PurePosixPath(path).relative_to(target)
    return spec["source"], inside, spec


def _secret_file(name: str, path: str) -> Path:
    """The file a compose secret mounted at `path` in a service comes from."""
    secret = PurePosixPath(path)
    assert secret.parent == PurePosixPath("/run/secrets"), path
    assert secret.name in SERVICES[name].get("secrets", []), f"{name} lacks {secret.name}"
    source = str(COMPOSE["secrets"][secret.name]["file"])
    return ROOT / source


def test_settings_are_settings_of_the_services_that_get_them() -> None:
    """Every AGOGOSML_READER_ variable of the reader's and AGOGOSML_GDPR_ one of the
    monitor's is a field of their settings: a misspelt one would be ignored."""
    reader = environment(compose_name("input_reader"))
    strays = [name for name in reader if name.startswith("AGOGOSML_READER_")
              and not _settings_field(SETTINGS["input_reader"], name)]
    assert not strays, strays
    gdpr = [name for name in environment(compose_name("monitor"))
            if name.startswith("AGOGOSML_GDPR_")]
    assert gdpr
    assert all(_settings_field(GdprSettings, name) for name in gdpr), gdpr


def test_the_reader_applies_the_demo_policy_and_pseudonymizes_the_subject(
        tmp_path: Path) -> None:
    reader = compose_name("input_reader")
    env = environment(reader)
    policy_path = env["AGOGOSML_READER_PRIVACY_POLICY_PATH"]
    source = _mount_specs(reader)[policy_path]
    assert source == {"source": "./agogosml/localstack/privacy-policy.yaml", "read_only": True,
                      "subpath": None}
    make_run = pipeline_env("kafka:19092", "http://mlflow:5000")[
        "AGOGOSML_READER_PRIVACY_POLICY_PATH"]
    assert Path(make_run).read_text() == (ROOT / source["source"]).read_text(), (
        "the policy make run applies")
    policy = Policy.from_file(ROOT / source["source"])
    subject = env["AGOGOSML_READER_SUBJECT_FIELD"]
    rule = policy.fields.get(subject)
    assert (policy.default if rule is None else rule.action) in ("pseudonymize", "drop")
    keyring = tmp_path / "keyring.yaml"
    keyring.write_text(new_keyring_text())  # what `agogosml gdpr keygen` prints
    protected = PolicyEngine(policy, Keyring.from_file(keyring)).apply(
        {subject: "c-1001", "email": "ada@example.com", "amount": 1.0})
    assert "c-1001" not in str(protected)
    assert "ada@example.com" not in str(protected)


def test_keys_come_from_compose_secrets_kept_out_of_the_repository() -> None:
    """The keyring and the KEK are compose secrets from files under var/ (git-ignored),
    mounted into exactly the services that read them."""
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/var/" in ignored
    reader = environment(compose_name("input_reader"))
    monitor = environment(compose_name("monitor"))
    for name, path in (
            (compose_name("input_reader"), reader["AGOGOSML_READER_PRIVACY_KEYRING_PATH"]),
            (compose_name("input_reader"), reader["AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH"]),
            (compose_name("monitor"), monitor["AGOGOSML_GDPR_KEYRING_PATH"]),
            (compose_name("monitor"), monitor["AGOGOSML_GDPR_KEK_PATH"])):
        source = _secret_file(name, path)
        assert source.relative_to(ROOT).parts[:2] == ("var", "privacy"), source
    assert reader["AGOGOSML_READER_PRIVACY_KEYRING_PATH"] == monitor["AGOGOSML_GDPR_KEYRING_PATH"]
    assert reader["AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH"] == monitor["AGOGOSML_GDPR_KEK_PATH"]
    assert reader["AGOGOSML_READER_PRIVACY_KEYRING_PATH"] != monitor["AGOGOSML_GDPR_KEK_PATH"]
    users = {name for name, service in SERVICES.items() if service.get("secrets")}
    assert users == {compose_name("input_reader"), compose_name("monitor"), "train-demo"}
    assert SERVICES["train-demo"]["secrets"] == ["privacy-keyring"]  # no KEK


def _train_demo_option(option: str) -> str:
    command = SERVICES["train-demo"]["command"]
    value: str = command[command.index(option) + 1]
    return value


def test_reader_monitor_and_training_share_one_privacy_store() -> None:
    """The reader's subject keys, the monitor's GDPR store and train-demo's lineage index
    are one SQLite file on one named volume; the volume's first user mounts it on /data,
    which the images' user owns, so that the services can write it."""
    stores = {
        compose_name("input_reader"):
            environment(compose_name("input_reader"))["AGOGOSML_READER_SUBJECT_KEYS_URL"],
        compose_name("monitor"): environment(compose_name("monitor"))["AGOGOSML_GDPR_STORE_URL"],
        "train-demo": _train_demo_option("--lineage-url")}
    assert len(set(stores.values())) == 1, stores
    placed = {_in_volume(name, url.removeprefix("sqlite:///"))[:2]
              for name, url in stores.items()}
    assert len(placed) == 1, placed
    [(volume, _)] = placed
    assert not any(_in_volume(name, url.removeprefix("sqlite:///"))[2]["read_only"]
                   for name, url in stores.items())
    assert _mounts("privacy-volume") == {"/data": volume}
    user = stage("runtime").one("USER").split(":")[0]
    assert re.search(rf"install --directory --owner={user}\b[^&]* /data\b",
                     " ".join(stage("runtime").all("RUN"))), "the images' user owns /data"
    assert SERVICES["privacy-volume"]["restart"] == "no"
    users = {name for name in SERVICES if volume in _mounts(name).values()}
    assert users == {*stores, "privacy-volume"}
    for name in users - {"privacy-volume"}:
        assert "privacy-volume" in _waits_for(name), f"{name} must wait for privacy-volume"


def _waits_for(name: str) -> set[str]:
    """The services `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(depends_on(name))
    while todo:
        dependency = todo.pop()
        if dependency not in seen:
            seen.add(dependency)
            todo.extend(depends_on(dependency))
    return seen


def test_train_demo_keeps_its_data_set_as_the_policy_leaves_it() -> None:
    """As `make run` does: the training snapshot holds pseudonyms, so a forget finds the
    subject's rows by pseudonym."""
    policy = PurePosixPath(_train_demo_option("--privacy-policy"))
    assert _mount_specs("train-demo")[str(policy)] == \
        _mount_specs(compose_name("input_reader"))[
            environment(compose_name("input_reader"))["AGOGOSML_READER_PRIVACY_POLICY_PATH"]]
    assert _train_demo_option("--keyring") == environment(compose_name("input_reader"))[
        "AGOGOSML_READER_PRIVACY_KEYRING_PATH"]


def test_the_monitor_forgets_on_the_snapshot_the_retrain_server_trains_on() -> None:
    """AGOGOSML_GDPR_SNAPSHOTS: the data set train-demo wrote and the retrain server reads,
    seen by the monitor through a writable mount of the same volume folder."""
    monitor = compose_name("monitor")
    env = environment(monitor)
    snapshots = json.loads(env["AGOGOSML_GDPR_SNAPSHOTS"])
    dataset = _retrain_server_command().dataset
    assert len(snapshots) == 1
    assert _in_volume(monitor, snapshots[0])[:2] == _in_volume("retrain-server", str(dataset))[:2]
    assert not _in_volume(monitor, snapshots[0])[2]["read_only"], "a forget rewrites it"
    assert env["AGOGOSML_GDPR_TRACKING_URI"] == env["AGOGOSML_MONITOR_TRACKING_URI"]
    assert env["AGOGOSML_MONITOR_GDPR_ENABLED"] == "true"
    assert _waits_for(monitor) >= {"train-demo"}, "the data set exists before it is mounted"
