"""The monitor and the retrain server in the Helm chart, rendered by a real helm: one
monitor with its probes, store, rules file and API token; the retrain server only when
asked for, requiring its token, called by the monitor with the same token.

Who may reach them (NetworkPolicy) is in tests/packaging/test_chart_security.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path, PurePosixPath

import pytest

from agogosml.modelloop.cli import add_parsers as add_modelloop_parsers
from agogosml.monitor.triggers.rules import RetrainConfig, parse_rules
from tests.packaging.helm import (
    RELEASE,
    Helm,
    Manifest,
    Rendered,
    env_of,
    env_values,
    name_of,
    only_container,
    pod_spec,
)

pytestmark = pytest.mark.timeout(1_200)

MONITOR = f"{RELEASE}-monitor"
RULES = f"{RELEASE}-monitor-rules"
SERVER = f"{RELEASE}-retrain-server"
SERVER_URL = f"http://{SERVER}:8080"


def fails(helm: Helm, *values: str, sets: dict[str, str] | None = None,
          extra: tuple[str, ...] = ()) -> str:
    done = helm.template_run(list(values), sets=sets, extra=extra)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr


def mounts(workload: Manifest) -> dict[str, Manifest]:
    """Mount path -> the volume mounted there."""
    spec = pod_spec(workload)
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    return {mount["mountPath"]: volumes[mount["name"]]
            for mount in only_container(workload)["volumeMounts"]}


def secret_ref(container: Manifest, variable: str) -> dict[str, object]:
    entry = env_of(container)[variable]
    assert "value" not in entry, f"{variable} must come from a Secret"
    ref: dict[str, object] = entry["valueFrom"]["secretKeyRef"]
    return ref


def test_one_monitor_with_probes_metrics_and_a_cluster_ip_service(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["minimal"]
    monitor = chart.get("Deployment", MONITOR)
    assert monitor["spec"]["replicas"] == 1
    assert monitor["spec"]["strategy"] == {"type": "Recreate"}, (
        "a rolling update would run two writers on the SQLite store")
    container = only_container(monitor)
    assert container["image"].endswith("/agogosml/agogosml-monitor:0.1.0-3f2a9c1")
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8005, "protocol": "TCP"}]
    annotations = monitor["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        "8005", "/metrics")
    service = chart.get("Service", MONITOR)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["metadata"]["labels"]["agogosml.io/scrape"] == "true"
    env = env_values(container)
    assert env["AGOGOSML_MONITOR_SOURCE"] == "kafka"
    assert env["AGOGOSML_MONITOR_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["AGOGOSML_MONITOR_OUTPUT_STREAM"] == "agogosml.output"
    assert env["AGOGOSML_MONITOR_LABELS_STREAM"] == "agogosml.labels"
    assert env["AGOGOSML_MONITOR_TRACKING_URI"] == "http://mlflow:5000"


def test_the_monitor_scrapes_the_services_where_they_listen(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["minimal"]
    env = env_values(only_container(chart.get("Deployment", MONITOR)))
    urls = json.loads(env["AGOGOSML_MONITOR_SCRAPE_URLS"])
    assert set(urls) == {"input_reader", "app", "output_writer"}
    services = {name_of(item): item["spec"]["ports"][0]["port"]
                for item in chart.of_kind("Service")}
    for url in urls.values():
        host, _, rest = url.removeprefix("http://").partition(":")
        port, _, path = rest.partition("/")
        assert services[host] == int(port), url
        assert path == "metrics"


def test_the_monitor_reads_its_api_token_from_the_auth_secret(
        rendered: dict[str, Rendered]) -> None:
    for values, secret in (("minimal", RELEASE), ("existing-secret", "agogosml-auth")):
        container = only_container(rendered[values].get("Deployment", MONITOR))
        assert secret_ref(container, "AGOGOSML_MONITOR_API_TOKEN") == {
            "name": secret, "key": "monitor-api-token"}
        assert secret_ref(container, "AGOGOSML_MONITOR_API_TOKEN_SECONDARY") == {
            "name": secret, "key": "monitor-api-token-secondary", "optional": True}
        assert not [name for name in env_of(container) if "PIPELINE_TOKEN" in name]
        assert "AGOGOSML_MONITOR_RETRAIN_TOKEN" not in env_of(container)  # no server


def test_sqlite_on_a_claim_of_its_own(rendered: dict[str, Rendered], helm: Helm) -> None:
    chart = rendered["minimal"]
    monitor = chart.get("Deployment", MONITOR)
    store_url = env_values(only_container(monitor))["AGOGOSML_MONITOR_STORE_URL"]
    assert store_url.startswith("sqlite:////")
    path = PurePosixPath(store_url.removeprefix("sqlite:///"))
    volume = mounts(monitor)[str(path.parent)]
    assert volume["persistentVolumeClaim"] == {"claimName": MONITOR}
    claim = chart.get("PersistentVolumeClaim", MONITOR)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "storageClassName" not in claim["spec"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    sized = helm.template(["minimal"], sets={"monitor.persistence.size": "20Gi",
                                             "monitor.persistence.storageClass": "fast"})
    claim = sized.get("PersistentVolumeClaim", MONITOR)
    assert (claim["spec"]["storageClassName"],
            claim["spec"]["resources"]["requests"]["storage"]) == ("fast", "20Gi")
    own = helm.template(["minimal"], sets={"monitor.persistence.existingClaim": "events"})
    assert not own.of_kind("PersistentVolumeClaim")
    assert mounts(own.get("Deployment", MONITOR))[str(path.parent)][
        "persistentVolumeClaim"] == {"claimName": "events"}


def test_a_database_store_comes_from_a_secret_and_needs_no_claim(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["existing-secret"]
    monitor = chart.get("Deployment", MONITOR)
    assert secret_ref(only_container(monitor), "AGOGOSML_MONITOR_STORE_URL") == {
        "name": "agogosml-monitor-store", "key": "url"}
    assert not chart.of_kind("PersistentVolumeClaim")
    assert not [volume for volume in pod_spec(monitor)["volumes"]
                if "persistentVolumeClaim" in volume]


def test_the_rules_config_map_is_mounted_at_rules_path(rendered: dict[str, Rendered]) -> None:
    """What values.yaml gives is what the monitor parses at start-up, with the real
    parser; the pod rolls when the rules change."""
    for values in ("minimal", "retraining"):
        chart = rendered[values]
        monitor = chart.get("Deployment", MONITOR)
        rules_path = PurePosixPath(
            env_values(only_container(monitor))["AGOGOSML_MONITOR_RULES_PATH"])
        volume = mounts(monitor)[str(rules_path.parent)]
        assert volume["configMap"] == {"name": RULES}
        config_map = chart.get("ConfigMap", RULES)
        parsed = parse_rules(config_map["data"][rules_path.name], values)
        assert parsed.rules, values
        annotations = monitor["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/rules"]) == 64


def test_without_rules_no_file(helm: Helm) -> None:
    chart = helm.template(["minimal"], extra=(
        "--set-json", 'monitor.rules={"rules": [], "alerts": []}'))
    assert chart.find("ConfigMap", RULES) is None
    env = env_values(only_container(chart.get("Deployment", MONITOR)))
    assert "AGOGOSML_MONITOR_RULES_PATH" not in env


def test_the_monitor_can_be_turned_off(helm: Helm) -> None:
    chart = helm.template(["minimal"], sets={"monitor.enabled": "false"})
    assert not [item for item in chart.objects if "monitor" in name_of(item)]
    assert "monitor-api-token" not in json.dumps(chart.objects)


# --- the retrain server ---------------------------------------------------------------


def server_command(container: Manifest) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agogosml")
    add_modelloop_parsers(parser.add_subparsers(dest="command", required=True))
    assert container["command"] == ["agogosml"]
    return parser.parse_args(container["args"])


def test_the_retrain_server_is_off_unless_asked(rendered: dict[str, Rendered]) -> None:
    for values, chart in rendered.items():
        assert (chart.find("Deployment", SERVER) is not None) is (values == "retraining"), values


def test_the_retrain_server_requires_its_token(rendered: dict[str, Rendered]) -> None:
    chart = rendered["retraining"]
    server = chart.get("Deployment", SERVER)
    assert server["spec"]["replicas"] == 1
    container = only_container(server)
    assert secret_ref(container, "AGOGOSML_RETRAIN_TOKEN") == {
        "name": RELEASE, "key": "retrain-token"}
    assert secret_ref(container, "AGOGOSML_RETRAIN_TOKEN_SECONDARY") == {
        "name": RELEASE, "key": "retrain-token-secondary", "optional": True}
    args = server_command(container)
    assert args.command == "retrain-server"
    assert (args.host, args.port) == ("0.0.0.0", 8080)
    assert container["ports"][0]["containerPort"] == 8080
    assert str(args.dataset) == "/datasets/fraud/transactions.csv"
    assert (args.tracking_uri, args.model_name) == ("http://mlflow:5000", "fraud")
    assert (args.estimator, args.min_roc_auc) == ("hist_gradient_boosting", 0.7)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert mounts(server)["/datasets"]["persistentVolumeClaim"]["claimName"] == \
        "fraud-training-data"
    assert chart.get("Service", SERVER)["spec"]["ports"][0]["port"] == 8080
    assert "agogosml.io/scrape" not in chart.get("Service", SERVER)["metadata"]["labels"]


def test_the_monitor_calls_the_retrain_server_with_the_same_token(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["retraining"]
    monitor = only_container(chart.get("Deployment", MONITOR))
    server = only_container(chart.get("Deployment", SERVER))
    assert env_values(monitor)["AGOGOSML_MONITOR_RETRAIN_URL"] == SERVER_URL
    assert secret_ref(monitor, "AGOGOSML_MONITOR_RETRAIN_TOKEN") == \
        secret_ref(server, "AGOGOSML_RETRAIN_TOKEN")
    rules = parse_rules(chart.get("ConfigMap", RULES)["data"]["rules.yaml"])
    retrain = [rule.action for rule in rules.rules if isinstance(rule.action, RetrainConfig)]
    assert retrain, "ci/retraining-values.yaml has a retrain rule"
    assert {str(action.url).rstrip("/") for action in retrain} == {SERVER_URL}


def test_a_retrain_rule_without_a_server_is_refused(helm: Helm) -> None:
    error = fails(helm, "retraining", sets={"retraining.server.enabled": "false"})
    assert "monitor.rules.rules: drift-alarms has a retrain action without url" in error


def test_enabling_the_server_without_a_tag_or_dataset_says_what_is_missing(helm: Helm) -> None:
    error = fails(helm, "minimal", sets={"retraining.server.enabled": "true"})
    assert "at '/retraining/image': missing property 'tag'" in error
    assert "at '/retraining': missing property 'dataset'" in error
    assert "retraining.dataset is required while retraining.server.enabled is true" in fails(
        helm, "minimal", sets={"retraining.server.enabled": "true",
                               "retraining.image.tag": "0.1.0-3f2a9c1"},
        extra=("--skip-schema-validation",))


@pytest.mark.parametrize(("sets", "message"), [
    ({"monitor.replicas": "2"}, "at '/monitor': additional properties 'replicas'"),
    ({"monitor.maxVersions": "0"}, "at '/monitor/maxVersions'"),
    ({"monitor.persistence.size": "lots"}, "at '/monitor/persistence/size'"),
    ({"auth.monitorApiToken": "short"}, "at '/auth/monitorApiToken'"),
    ({"auth.retrainToken": "has a space in it!"}, "at '/auth/retrainToken'"),
])
def test_schema_rejects_bad_monitor_values(helm: Helm, sets: dict[str, str],
                                           message: str) -> None:
    error = fails(helm, "minimal", sets=sets)
    assert "don't meet the specifications of the schema" in error
    assert message in error


def test_notes_say_how_to_reach_the_monitor(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path, ["retraining"])
    assert f"port-forward service/{MONITOR} 8005:8005" in notes
    assert "http://localhost:8005/" in notes
    assert "jsonpath='{.data.monitor-api-token}'" in notes
    assert f"Retrain server: {SERVER_URL}" in notes
