"""The Helm chart charts/agogosml, rendered by a real helm over a matrix of values files.

What a user and the rollout tool rely on: the production Service follows productionSlot
and the preview Service selects the other slot; both slots come from one template; secrets
only in a Secret; pinned images; hardened pods with probes; shadow scoring that never
writes to production; Prometheus objects only when asked for; scheduled retraining only
when asked for, hardened like the services and never promoting; values checked by the
schema with messages that say what is wrong.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from agogosml.modelloop.cli import add_parsers as add_modelloop_parsers
from agogosml.modelloop.http import RetrainServerSettings
from agogosml.privacy.settings import GdprSettings
from agogosml.services.app.settings import AppSettings
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.output_writer.settings import WriterSettings
from tests.packaging.helm import (
    CHART,
    CI_VALUES_DIR,
    CI_VALUES_SUFFIX,
    MATRIX,
    NAMESPACE,
    RELEASE,
    ROOT,
    Helm,
    Manifest,
    Rendered,
    env_of,
    env_values,
    load_values,
    name_of,
    only_container,
    pod_spec,
)

# Building Helm from source takes minutes the first time; later runs find it cached.
pytestmark = pytest.mark.timeout(1_200)

SECRET_PATHS = (
    ("kafka", "sasl", "password"),
    ("kafka", "eventhubsConnectionString"),
    ("eventhubs", "connectionString"),
    ("eventhubs", "checkpointBlobConnectionString"),
    ("auth", "pipelineToken"),
    ("auth", "pipelineTokenSecondary"),
    ("auth", "apiKey", "value"),
    ("auth", "apiKey", "secondary"),
    ("auth", "monitorApiToken"),
    ("auth", "monitorApiTokenSecondary"),
    ("auth", "retrainToken"),
    ("auth", "retrainTokenSecondary"),
    ("privacy", "store", "url"),
    ("secretChecksumSalt",),
)
# Under `helm template` the chart cannot look its Secrets up, so it draws new tokens, a
# new checksum salt and new privacy keys on every render; renders that are compared get
# these instead (the keyrings from Secrets of the operator's).
FIXED_SECRETS = {
    "auth.pipelineToken": "TESTSECRET-fixed-pipeline-token",
    "auth.apiKey.value": "TESTSECRET-fixed-api-key-0001",
    "auth.monitorApiToken": "TESTSECRET-fixed-monitor-token",
    "auth.retrainToken": "TESTSECRET-fixed-retrain-token",
    "secretChecksumSalt": "TESTSECRET-fixed-salt",
    "privacy.keyring.existingSecret": "fixed-privacy-keyring",
    "privacy.kek.existingSecret": "fixed-privacy-kek",
}
GENERATED_KEYS = {"pipeline-token", "api-key", "monitor-api-token", "retrain-token",
                  "checksum-salt"}
SETTINGS: tuple[type[BaseSettings], ...] = (ReaderSettings, AppSettings, WriterSettings,
                                            MonitorSettings, RetrainServerSettings,
                                            GdprSettings)
FULLNAME = RELEASE  # the release name contains the chart name, so fullname is the release
APP = f"{FULLNAME}-app"
PREVIEW = f"{FULLNAME}-app-preview"
WRITER_URL = f"http://{FULLNAME}-output-writer:8001"
SHADOW_WRITER_URL = f"http://{FULLNAME}-output-writer-shadow:8001"
SLOT_LABEL = "agogosml.io/slot"
HARDENED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
}
TAG = "0.1.0-3f2a9c1"
RETRAIN = f"{FULLNAME}-retrain"
MONITOR = f"{FULLNAME}-monitor"
RETRAIN_SERVER = f"{FULLNAME}-retrain-server"


def secrets_in(values_name: str) -> list[str]:
    values = load_values(values_name)
    found = []
    for path in SECRET_PATHS:
        node: Any = values
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            found.append(node)
    return found


def deployment(rendered: Rendered, suffix: str) -> Manifest:
    return rendered.get("Deployment", f"{FULLNAME}-{suffix}")


def app_deployments(rendered: Rendered) -> dict[str, Manifest]:
    """The app's Deployments by slot."""
    return {item["metadata"]["labels"][SLOT_LABEL]: item
            for item in rendered.of_kind("Deployment")
            if item["metadata"]["labels"].get("app.kubernetes.io/component") == "app"}


def reader_env(rendered: Rendered) -> dict[str, str]:
    return env_values(only_container(deployment(rendered, "input-reader")))


def fails(helm: Helm, *values: str, sets: dict[str, str] | None = None,
          set_strings: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> str:
    done = helm.template_run(list(values), sets=sets, set_strings=set_strings, extra=extra)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    assert done.stdout == ""
    return done.stderr


def cron_pods(rendered: Rendered) -> list[tuple[Manifest, Manifest]]:
    """(CronJob, the pod spec of the Jobs it creates), for every CronJob."""
    return [(item, item["spec"]["jobTemplate"]["spec"]["template"]["spec"])
            for item in rendered.of_kind("CronJob")]


def all_containers(rendered: Rendered) -> list[tuple[Manifest, Manifest]]:
    """(workload, container) for the Deployments and Pods, and the CronJobs' pods."""
    found = list(rendered.containers())
    for item, spec in cron_pods(rendered):
        found += [(item, container) for key in ("initContainers", "containers")
                  for container in spec.get(key) or []]
    return found


# --- lint and render -----------------------------------------------------------------


def test_every_file_in_ci_is_in_the_matrix() -> None:
    """ci/ holds only `<name>-values.yaml` files: one named otherwise would silently not
    be tested."""
    assert MATRIX
    assert sorted(path.name for path in CI_VALUES_DIR.iterdir()) == \
        sorted(f"{name}{CI_VALUES_SUFFIX}" for name in MATRIX)


def test_the_packaged_chart_leaves_the_matrix_out(helm: Helm, tmp_path: Path) -> None:
    """The matrix is for the tests (with made-up credentials): .helmignore keeps ci/ out of
    `helm package`, which CI publishes."""
    helm.check("package", str(CHART), "--destination", str(tmp_path))
    [package] = tmp_path.glob("*.tgz")
    with tarfile.open(package) as archive:
        names = archive.getnames()
    assert "agogosml/templates/app-slots.yaml" in names
    assert [name for name in names if name.startswith("agogosml/ci/")] == []


@pytest.mark.parametrize("values", MATRIX)
def test_lint_is_clean(helm: Helm, values: str) -> None:
    done = helm.lint([values])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout
    assert "[ERROR]" not in done.stdout


@pytest.mark.parametrize("values", MATRIX)
def test_every_object_is_named_and_labelled(rendered: dict[str, Rendered], values: str) -> None:
    objects = rendered[values].objects
    assert objects
    for item in objects:
        name = name_of(item)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert len(name) <= 63, name
        labels = item["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/name"] == "agogosml"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_long_release_names_still_fit(helm: Helm) -> None:
    release = "a-release-name-long-enough-that-names-need-shortening"
    assert len(release) == 53  # the longest release name helm accepts
    rendered = helm.template(["green-live"], sets={"inputReader.shadow.enabled": "true"},
                             release=release)
    for item in rendered.objects:
        assert len(name_of(item)) <= 63, name_of(item)
    for kind in ("Deployment", "Service"):
        names = [name_of(item) for item in rendered.of_kind(kind)]
        assert len(set(names)) == len(names), names
    reader = env_values(only_container(rendered.of_kind("Deployment")[0]))
    assert "-app:8000" in reader.get("AGOGOSML_READER_APP_URL", "-app:8000")


# --- blue/green ----------------------------------------------------------------------


@pytest.mark.parametrize(("values", "production", "preview"),
                         [("minimal", "blue", "green"), ("green-live", "green", "blue")])
def test_production_service_follows_production_slot(rendered: dict[str, Rendered], values: str,
                                                    production: str, preview: str) -> None:
    services = rendered[values]
    assert services.get("Service", APP)["spec"]["selector"][SLOT_LABEL] == production
    assert services.get("Service", PREVIEW)["spec"]["selector"][SLOT_LABEL] == preview
    for name in (APP, PREVIEW):
        selector = services.get("Service", name)["spec"]["selector"]
        assert selector["app.kubernetes.io/component"] == "app"
        assert selector["app.kubernetes.io/instance"] == RELEASE


@pytest.mark.parametrize("shadow", [False, True])
def test_promotion_changes_only_the_service_selectors(helm: Helm, shadow: bool) -> None:
    """Shadow on or off, switching productionSlot changes which slot the two Services
    select and nothing else: no Deployment or pod template, so no pod restarts."""
    sets = {"inputReader.shadow.enabled": str(shadow).lower()}
    blue = helm.template(["green-live"], sets={**sets, "productionSlot": "blue"},
                         set_strings=FIXED_SECRETS)
    green = helm.template(["green-live"], sets={**sets, "productionSlot": "green"},
                          set_strings=FIXED_SECRETS)
    assert changed_objects(blue, green) == {("Service", APP), ("Service", PREVIEW)}
    for name in (APP, PREVIEW):
        assert changed_paths(blue.get("Service", name), green.get("Service", name)) == {
            f"spec.selector.{SLOT_LABEL}", f"metadata.annotations.{SLOT_LABEL}"}
    assert (blue.get("Service", APP)["spec"]["selector"][SLOT_LABEL],
            green.get("Service", APP)["spec"]["selector"][SLOT_LABEL]) == ("blue", "green")


def changed_paths(before: Any, after: Any, path: str = "") -> set[str]:
    """Dotted paths of the leaves that differ between two objects."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {changed for key in before.keys() | after.keys()
                for changed in changed_paths(before.get(key), after.get(key),
                                             f"{path}.{key}" if path else str(key))}
    return set() if before == after else {path}


def changed_objects(before: Rendered, after: Rendered) -> set[tuple[str, str]]:
    names = {(item["kind"], name_of(item)) for item in before.objects + after.objects}
    return {(kind, name) for kind, name in names
            if before.find(kind, name) != after.find(kind, name)}


@pytest.mark.parametrize(("values", "slot"), [("green-live", "blue"), ("shadow", "green")])
def test_deploying_to_one_slot_leaves_everything_else_untouched(helm: Helm, values: str,
                                                                slot: str) -> None:
    """What `agogosml rollout deploy` does to the idle slot restarts nothing else."""
    before = helm.template([values], set_strings=FIXED_SECRETS)
    after = helm.template([values], set_strings={**FIXED_SECRETS,
                                                 f"app.slots.{slot}.image.tag": "0.2.0-c0ffee1",
                                                 f"app.slots.{slot}.modelUri": "models:/m/7"})
    assert changed_objects(before, after) == {("Deployment", f"{APP}-{slot}")}


@pytest.mark.parametrize("values", MATRIX)
def test_pod_templates_carry_no_version_labels(rendered: dict[str, Rendered],
                                              values: str) -> None:
    """A new chart or app version must not restart the production slot's pods."""
    for item in rendered[values].of_kind("Deployment"):
        labels = item["spec"]["template"]["metadata"]["labels"]
        assert "helm.sh/chart" not in labels
        assert "app.kubernetes.io/version" not in labels
        assert item["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_both_slots_render_from_one_template(rendered: dict[str, Rendered]) -> None:
    both = rendered["green-live"]
    slots = app_deployments(both)
    assert set(slots) == {"blue", "green"}
    assert {both.source_of(item) for item in slots.values()} == {
        "agogosml/templates/app-slots.yaml"}
    assert set(app_deployments(rendered["minimal"])) == {"blue"}
    templates = [path.name for path in (CHART / "templates").rglob("*")]
    assert not [name for name in templates if "blue" in name or "green" in name]


def test_each_slot_carries_its_own_image_and_model(rendered: dict[str, Rendered]) -> None:
    slots = app_deployments(rendered["green-live"])
    blue, green = (only_container(slots[slot]) for slot in ("blue", "green"))
    assert blue["image"] == f"ghcr.io/agogosml/agogosml-app:{TAG}"
    assert green["image"] == "ghcr.io/agogosml/agogosml-app:0.1.1-8d0e4b7"
    assert env_values(blue)["AGOGOSML_APP_MODEL_URI"] == "models:/fraud/3"
    assert env_values(green)["AGOGOSML_APP_MODEL_URI"] == "models:/fraud/4"
    for slot, item in slots.items():
        labels = item["spec"]["template"]["metadata"]["labels"]
        assert labels[SLOT_LABEL] == slot
        assert item["spec"]["selector"]["matchLabels"][SLOT_LABEL] == slot


def test_the_rollout_tool_finds_what_it_reads(rendered: dict[str, Rendered]) -> None:
    """agogosml.rollout reads Deployments <fullname>-app-<slot>, the production Service's
    slot selector and each slot's metrics at http://<fullname>-app-<slot>:8000/metrics."""
    both = rendered["green-live"]
    for slot in ("blue", "green"):
        both.get("Deployment", f"{FULLNAME}-app-{slot}")
        service = both.get("Service", f"{FULLNAME}-app-{slot}")
        assert service["spec"]["selector"][SLOT_LABEL] == slot
        assert service["spec"]["ports"][0]["port"] == 8000


def test_production_slot_must_be_enabled(helm: Helm) -> None:
    message = fails(helm, "minimal", sets={"productionSlot": "green"})
    assert "app.slots.green.enabled is false" in message


def test_hpa_targets_each_slot_deployment(rendered: dict[str, Rendered]) -> None:
    both = rendered["green-live"]
    hpas = both.of_kind("HorizontalPodAutoscaler")
    assert {name_of(hpa) for hpa in hpas} == {f"{APP}-blue", f"{APP}-green"}
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert both.get("Deployment", target["name"])
        assert target["name"] == name_of(hpa)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    for item in app_deployments(both).values():
        assert "replicas" not in item["spec"], "the HPA owns replicas"
    assert not rendered["minimal"].of_kind("HorizontalPodAutoscaler")


def test_a_pod_disruption_budget_per_component(rendered: dict[str, Rendered],
                                               helm: Helm) -> None:
    shadow = rendered["shadow"]
    budgets = shadow.of_kind("PodDisruptionBudget")
    assert {name_of(item) for item in budgets} == {
        f"{FULLNAME}-input-reader", f"{APP}-blue", f"{APP}-green",
        f"{FULLNAME}-output-writer", f"{FULLNAME}-output-writer-shadow", MONITOR}
    for budget in budgets:
        assert budget["spec"]["selector"]["matchLabels"] == shadow.get(
            "Deployment", name_of(budget))["spec"]["selector"]["matchLabels"]
    off = helm.template(["shadow"], sets={"podDisruptionBudget.enabled": "false"})
    assert not off.of_kind("PodDisruptionBudget")


# --- the input reader and shadow scoring ----------------------------------------------


@pytest.mark.parametrize("values", MATRIX)
def test_one_reader_deployment_forwarding_to_production(rendered: dict[str, Rendered],
                                                        values: str) -> None:
    readers = [item for item in rendered[values].of_kind("Deployment")
               if item["metadata"]["labels"]["app.kubernetes.io/component"] == "input-reader"]
    assert len(readers) == 1
    keda = load_values(values).get("inputReader", {}).get("keda", {}).get("enabled", False)
    assert readers[0]["spec"].get("replicas") == (None if keda else 1)  # KEDA's HPA owns it
    assert reader_env(rendered[values])["AGOGOSML_READER_APP_URL"] == f"http://{APP}:8000"


def test_reader_stall_limits_reach_the_reader(rendered: dict[str, Rendered],
                                             helm: Helm) -> None:
    defaults = ReaderSettings(pipeline_token=SecretStr("a-pipeline-token-for-the-test"))
    env = reader_env(rendered["minimal"])
    assert float(env["AGOGOSML_READER_STALL_READY_S"]) == defaults.stall_ready_s
    assert float(env["AGOGOSML_READER_STALL_LIVE_S"]) == defaults.stall_live_s
    chart = helm.template(["minimal"], sets={"inputReader.stallReadyS": "90",
                                             "inputReader.stallLiveS": "600.5"})
    env = reader_env(chart)
    assert (env["AGOGOSML_READER_STALL_READY_S"], env["AGOGOSML_READER_STALL_LIVE_S"]) == (
        "90", "600.5")
    ReaderSettings(stall_ready_s=90, stall_live_s=600.5,  # values the reader accepts
                   pipeline_token=SecretStr("a-pipeline-token-for-the-test"))
    assert ("inputReader.stallLiveS (30) must not be below inputReader.stallReadyS (60)"
            in fails(helm, "minimal", sets={"inputReader.stallLiveS": "30"}))


@pytest.mark.parametrize("values", MATRIX)
def test_reader_probes_let_the_stall_limits_decide(rendered: dict[str, Rendered],
                                                   values: str) -> None:
    """Readiness is /readyz (503 once stalled for stallReadyS); liveness is /healthz, which
    fails only past stallLiveS: a liveness probe on /readyz would restart a reader whose app
    is down, and a short timeout would restart one that is merely busy."""
    container = only_container(deployment(rendered[values], "input-reader"))
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert ready["httpGet"]["path"] == "/readyz"
    assert live["httpGet"]["path"] == "/healthz"
    assert live["timeoutSeconds"] >= 5
    assert live["failureThreshold"] >= 3
    window = live["periodSeconds"] * live["failureThreshold"]
    stall_live = float(reader_env(rendered[values])["AGOGOSML_READER_STALL_LIVE_S"])
    assert window <= stall_live / 5, "the stall limit, not the probe, decides when"


def test_shadow_mirrors_to_preview_and_writes_to_the_shadow_destination(
        rendered: dict[str, Rendered]) -> None:
    shadow = rendered["shadow"]
    env = reader_env(shadow)
    assert env["AGOGOSML_READER_SHADOW_URL"] == f"http://{PREVIEW}:8000"
    assert env["AGOGOSML_READER_SHADOW_SAMPLE_RATIO"] == "0.25"
    writer = env_values(only_container(deployment(shadow, "output-writer-shadow")))
    assert writer["AGOGOSML_WRITER_OUTPUT_STREAM"] == "fraud.shadow"
    main = env_values(only_container(deployment(shadow, "output-writer")))
    assert main["AGOGOSML_WRITER_OUTPUT_STREAM"] == "agogosml.output"
    for slot, item in app_deployments(shadow).items():
        app = env_values(only_container(item))
        assert app["AGOGOSML_APP_WRITER_URL"] == WRITER_URL, slot
        assert app["AGOGOSML_APP_SHADOW_WRITER_URL"] == SHADOW_WRITER_URL, slot
    assert shadow.get("Service", f"{FULLNAME}-output-writer-shadow")["spec"]["selector"][
        "app.kubernetes.io/component"] == "output-writer-shadow"


@pytest.mark.parametrize("production", ["blue", "green"])
def test_either_colour_writes_production_and_shadow_batches_apart(helm: Helm,
                                                                 production: str) -> None:
    """Whichever slot is live, both know the main writer (unmarked batches) and the shadow
    writer (batches the reader mirrored), so the colours' pods are identical but for
    image and model; the reader forwards to the production Service and mirrors to the
    preview Service."""
    chart = helm.template(["shadow"], sets={"productionSlot": production})
    slots = app_deployments(chart)
    assert set(slots) == {"blue", "green"}
    for item in slots.values():
        app = env_values(only_container(item))
        assert (app["AGOGOSML_APP_WRITER_URL"], app["AGOGOSML_APP_SHADOW_WRITER_URL"]) == (
            WRITER_URL, SHADOW_WRITER_URL)
    reader = reader_env(chart)
    assert reader["AGOGOSML_READER_APP_URL"] == f"http://{APP}:8000"
    assert reader["AGOGOSML_READER_SHADOW_URL"] == f"http://{PREVIEW}:8000"
    assert chart.get("Service", PREVIEW)["spec"]["selector"][SLOT_LABEL] != production


@pytest.mark.parametrize("values", ["minimal", "green-live"])
def test_without_shadow_nothing_is_mirrored(rendered: dict[str, Rendered], values: str) -> None:
    chart = rendered[values]
    assert not any(key.startswith("AGOGOSML_READER_SHADOW") for key in reader_env(chart))
    assert chart.find("Deployment", f"{FULLNAME}-output-writer-shadow") is None
    for item in app_deployments(chart).values():
        app = env_values(only_container(item))
        assert app["AGOGOSML_APP_WRITER_URL"] == WRITER_URL
        assert "AGOGOSML_APP_SHADOW_WRITER_URL" not in app  # a stray shadow batch is refused


def test_shadow_needs_the_preview_slot(helm: Helm) -> None:
    message = fails(helm, "minimal", sets={"inputReader.shadow.enabled": "true"})
    assert "app.slots.green.enabled is false" in message


def test_reader_schema_is_mounted_from_a_config_map(rendered: dict[str, Rendered]) -> None:
    chart = rendered["monitoring"]
    config_map = chart.get("ConfigMap", f"{FULLNAME}-input-schema")
    schema = json.loads(config_map["data"]["schema.json"])
    assert schema["properties"]["hour"]["maximum"] == 23
    reader = deployment(chart, "input-reader")
    env = env_values(only_container(reader))
    assert env["AGOGOSML_READER_SCHEMA_PATH"] == "/etc/agogosml/schema/schema.json"
    assert env["AGOGOSML_READER_ID_FIELD"] == "transaction_id"
    assert env["AGOGOSML_READER_SUBJECT_FIELD"] == "customer_id"
    assert env["AGOGOSML_READER_TIME_FIELD"] == "timestamp"
    mounts = {mount["name"]: mount for mount in only_container(reader)["volumeMounts"]}
    assert mounts["schema"]["mountPath"] == "/etc/agogosml/schema"
    volumes = {volume["name"]: volume for volume in pod_spec(reader)["volumes"]}
    assert volumes["schema"]["configMap"]["name"] == name_of(config_map)


# --- configuration and secrets --------------------------------------------------------


@pytest.mark.parametrize("values", MATRIX)
def test_every_env_var_is_a_real_setting(rendered: dict[str, Rendered], values: str) -> None:
    prefixes = {str(settings.model_config.get("env_prefix")): settings for settings in SETTINGS}
    for workload, container in all_containers(rendered[values]):
        for name in env_of(container):
            if name == "HOME":
                continue
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            assert prefix is not None, f"{name_of(workload)}: {name} has no service prefix"
            field = name.removeprefix(prefix).lower()
            assert field in prefixes[prefix].model_fields, f"{name_of(workload)}: {name}"


@pytest.mark.parametrize("values", [name for name in MATRIX if secrets_in(name)])
def test_secrets_only_in_the_secret(rendered: dict[str, Rendered], values: str) -> None:
    chart = rendered[values]
    secrets = secrets_in(values)
    for item in chart.objects:
        if item["kind"] == "Secret":
            continue
        text = yaml.safe_dump(item)
        for secret in secrets:
            assert secret not in text, f"a secret appears in {item['kind']} {name_of(item)}"
    for config_map in chart.of_kind("ConfigMap"):
        for value in (config_map.get("data") or {}).values():
            assert not any(secret in value for secret in secrets)
    for _, container in chart.containers():
        for value in env_values(container).values():
            assert not any(secret in value for secret in secrets)
    secret_object = chart.get("Secret", FULLNAME)
    stored = {key: base64.b64decode(value).decode()
              for key, value in secret_object["data"].items()}
    assert set(secrets) <= set(stored.values())
    # besides the inline secrets, only the generated tokens and salt (or given ones)
    assert {key for key, value in stored.items() if value not in secrets} <= GENERATED_KEYS


@pytest.mark.parametrize(("values", "variables"), [
    ("sasl", {"KAFKA_SASL_PASSWORD": "kafka-sasl-password"}),
    ("eventhubs-kafka-endpoint",
     {"KAFKA_EVENTHUBS_CONNECTION_STRING": "kafka-eventhubs-connection-string"}),
    ("eventhubs-native", {"EVENTHUBS_CONNECTION_STRING": "eventhubs-connection-string"}),
])
def test_services_read_secrets_through_secret_key_refs(rendered: dict[str, Rendered],
                                                       values: str,
                                                       variables: dict[str, str]) -> None:
    chart = rendered[values]
    for suffix, prefix in (("input-reader", "AGOGOSML_READER_"),
                           ("output-writer", "AGOGOSML_WRITER_")):
        env = env_of(only_container(deployment(chart, suffix)))
        for variable, key in variables.items():
            entry = env[prefix + variable]
            assert "value" not in entry
            assert entry["valueFrom"]["secretKeyRef"] == {"name": FULLNAME, "key": key}


def test_event_hubs_kafka_endpoint_needs_no_broker_settings(
        rendered: dict[str, Rendered]) -> None:
    env = reader_env(rendered["eventhubs-kafka-endpoint"])
    assert "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS" not in env
    assert "AGOGOSML_READER_KAFKA_SASL_USERNAME" not in env


def test_native_event_hubs_reader_gets_its_checkpoint_store(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["eventhubs-native"]
    reader = env_of(only_container(deployment(chart, "input-reader")))
    assert reader["AGOGOSML_READER_SOURCE"]["value"] == "eventhubs"
    assert reader["AGOGOSML_READER_EVENTHUBS_CHECKPOINT_BLOB_CONNECTION_STRING"][
        "valueFrom"]["secretKeyRef"]["key"] == "eventhubs-checkpoint-blob-connection-string"
    assert reader["AGOGOSML_READER_EVENTHUBS_CHECKPOINT_CONTAINER"]["value"] == \
        "fraud-checkpoints"
    writer = env_values(only_container(deployment(chart, "output-writer")))
    assert writer["AGOGOSML_WRITER_SINK"] == "eventhubs"


def test_existing_secret_is_referenced_and_nothing_rendered(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["existing-secret"]
    assert not chart.of_kind("Secret")
    for suffix, prefix in (("input-reader", "AGOGOSML_READER_"),
                           ("output-writer", "AGOGOSML_WRITER_")):
        env = env_of(only_container(deployment(chart, suffix)))
        assert env[f"{prefix}KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "kafka-credentials", "key": "password"}
        assert env[f"{prefix}KAFKA_SASL_USERNAME"]["value"] == "agogosml"
        assert env[f"{prefix}KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"


def test_a_changed_secret_rolls_the_pods_that_read_it(helm: Helm) -> None:
    def annotations(password: str) -> dict[str, dict[str, str]]:
        chart = helm.template(["sasl"], sets={"kafka.sasl.password": password},
                              set_strings=FIXED_SECRETS)
        return {name_of(item): item["spec"]["template"]["metadata"]["annotations"]
                for item in chart.of_kind("Deployment")}
    one, another = annotations("one-password"), annotations("another-password")
    for name in (f"{FULLNAME}-input-reader", f"{FULLNAME}-output-writer"):
        assert one[name]["checksum/secret"] != another[name]["checksum/secret"]
    assert one[f"{APP}-blue"] == another[f"{APP}-blue"]  # the app reads no Kafka password


@pytest.mark.parametrize(("sets", "message"), [
    ({"kafka.securityProtocol": "SASL_SSL"}, "needs kafka.sasl.mechanism"),
    ({"kafka.securityProtocol": "SASL_SSL", "kafka.sasl.mechanism": "PLAIN",
      "kafka.sasl.username": "u"}, "needs kafka.sasl.password or kafka.existingSecret"),
    ({"kafka.sasl.mechanism": "PLAIN"}, "kafka.securityProtocol is PLAINTEXT"),
    ({"kafka.eventhubsEndpoint": "true"}, "needs kafka.eventhubsConnectionString"),
    ({"kafka.existingSecret": "mine", "kafka.sasl.password": "p"}, "not both"),
    ({"transport": "eventhubs"}, "needs eventhubs.connectionString"),
])
def test_incomplete_connection_settings_are_refused(helm: Helm, sets: dict[str, str],
                                                    message: str) -> None:
    assert message in fails(helm, "minimal", sets=sets)


# --- images -------------------------------------------------------------------------


@pytest.mark.parametrize("values", MATRIX)
def test_images_are_pinned(rendered: dict[str, Rendered], values: str) -> None:
    for workload, container in all_containers(rendered[values]):
        image: str = container["image"]
        repository, _, tag = image.rpartition(":")
        assert "/" in repository, f"{name_of(workload)}: {image}"
        assert re.fullmatch(r"[\w][\w.-]*", tag), f"{name_of(workload)}: {image}"
        assert tag != "latest", f"{name_of(workload)}: {image}"


def test_reader_and_writer_images(rendered: dict[str, Rendered]) -> None:
    chart = rendered["minimal"]
    assert only_container(deployment(chart, "input-reader"))["image"] == \
        f"ghcr.io/agogosml/agogosml-input-reader:{TAG}"
    assert only_container(deployment(chart, "output-writer"))["image"] == \
        f"ghcr.io/agogosml/agogosml-output-writer:{TAG}"


def test_a_missing_tag_fails_rendering(helm: Helm) -> None:
    message = fails(helm)
    assert "/image': missing property 'tag'" in message
    assert "/app/slots/blue/image': missing property 'tag'" in message
    green = fails(helm, "minimal", sets={"app.slots.green.enabled": "true"})
    assert "/app/slots/green/image': missing property 'tag'" in green


def test_without_the_schema_the_templates_still_refuse_a_missing_tag(helm: Helm) -> None:
    skip = ("--skip-schema-validation",)
    assert "app.slots.blue.image.tag is required" in fails(
        helm, sets={"image.tag": TAG}, extra=skip)
    assert "image.tag (or outputWriter.image.tag) is required" in fails(
        helm, sets={"app.slots.blue.image.tag": TAG}, extra=skip)
    assert "app.slots.blue.image.tag is latest" in fails(
        helm, "minimal", sets={"app.slots.blue.image.tag": "latest"}, extra=skip)


# --- the schema ---------------------------------------------------------------------


@pytest.mark.parametrize(("sets", "message"), [
    ({"productionSlot": "purple"}, "at '/productionSlot': value must be one of 'blue', 'green'"),
    ({"app.slots.red.enabled": "true"}, "at '/app/slots': additional properties 'red'"),
    ({"app.slots.blue.image.tag": "latest"},
     "at '/app/slots/blue/image/tag': value must be 'an immutable version"),
    ({"image.tag": "latest"}, "at '/image/tag': value must be 'an immutable version"),
    ({"tests.image.tag": "latest"}, "at '/tests/image/tag'"),
    ({"app.slots.blue.image.tag": ""}, "at '/app/slots/blue/image/tag': minLength"),
    ({"inputReader.shadow.sampleRatio": "1.5"}, "at '/inputReader/shadow/sampleRatio'"),
    ({"transport": "file"}, "at '/transport'"),
    ({"kafka.securityProtocol": "SASL"}, "at '/kafka/securityProtocol'"),
    ({"securityContext.readOnlyRootFilesystem": "false"},
     "at '/securityContext/readOnlyRootFilesystem'"),
    ({"inputReader.replica": "2"}, "additional properties 'replica'"),
    ({"inputReader.stallReadyS": "0"}, "at '/inputReader/stallReadyS'"),
    ({"inputReader.stallLiveS": "86401"}, "at '/inputReader/stallLiveS'"),
    ({"metrics.prometheusRule.stalledFor": "soon"}, "at '/metrics/prometheusRule/stalledFor'"),
])
def test_schema_rejects_bad_values(helm: Helm, sets: dict[str, str], message: str) -> None:
    error = fails(helm, "minimal", sets=sets)
    assert "don't meet the specifications of the schema" in error
    assert message in error


def test_schema_wants_booleans_not_strings(helm: Helm) -> None:
    """`--set-string app.slots.green.enabled=true` would be truthy even as "false"."""
    error = fails(helm, "shadow", set_strings={"app.slots.green.enabled": "false"})
    assert "at '/app/slots/green/enabled': got string, want boolean" in error


def test_a_decimal_given_with_set_is_accepted(helm: Helm) -> None:
    """`--set` passes 0.07 as a string; the schema takes decimals in that form too."""
    chart = helm.template(["shadow"], sets={"inputReader.shadow.sampleRatio": "0.07"})
    assert reader_env(chart)["AGOGOSML_READER_SHADOW_SAMPLE_RATIO"] == "0.07"


def test_a_tag_set_as_string_is_accepted(helm: Helm) -> None:
    chart = helm.template(["green-live"], set_strings={"app.slots.blue.image.tag": "1.2"})
    assert only_container(app_deployments(chart)["blue"])["image"].endswith(":1.2")


# --- pods ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", MATRIX)
def test_service_containers_have_probes_on_the_http_port(rendered: dict[str, Rendered],
                                                         values: str) -> None:
    for item in rendered[values].of_kind("Deployment"):
        container = only_container(item)
        assert [port["name"] for port in container["ports"]] == ["http"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["port"] == "http"
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", MATRIX)
def test_every_pod_and_container_is_hardened(rendered: dict[str, Rendered], values: str) -> None:
    chart = rendered[values]
    specs = [(item, pod_spec(item)) for item in chart.workloads()] + cron_pods(chart)
    for _, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert isinstance(pod["runAsUser"], int)
        assert pod["runAsUser"] > 0
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
    for workload, container in all_containers(chart):
        context = container["securityContext"]
        for key, value in HARDENED.items():
            assert context[key] is value, f"{name_of(workload)}/{container['name']}: {key}"
        assert isinstance(context["runAsUser"], int)
        assert context["runAsUser"] > 0
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for _, spec in [(item, pod_spec(item)) for item in chart.of_kind("Deployment")] + \
            cron_pods(chart):
        (container,) = spec["containers"]
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("values", MATRIX)
def test_pods_carry_prometheus_scrape_annotations(rendered: dict[str, Rendered],
                                                  values: str) -> None:
    """Every service; not the retrain server, which admits the monitor alone."""
    for item in rendered[values].of_kind("Deployment"):
        if name_of(item) == RETRAIN_SERVER:
            assert "prometheus.io/scrape" not in item["spec"]["template"]["metadata"].get(
                "annotations", {})
            continue
        annotations = item["spec"]["template"]["metadata"]["annotations"]
        port = only_container(item)["ports"][0]["containerPort"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_helm_test_pod_checks_the_production_service(rendered: dict[str, Rendered]) -> None:
    chart = rendered["green-live"]
    (pod,) = chart.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (ready,) = pod["spec"]["initContainers"]
    (predict,) = pod["spec"]["containers"]
    assert ready["args"][-1] == f"http://{APP}:8000/readyz"
    assert predict["args"][-1] == f"http://{APP}:8000/predict"
    body = json.loads(predict["args"][predict["args"].index("--data") + 1])
    assert body["merchant_category"] == "jewelry"
    assert re.fullmatch(r"docker\.io/curlimages/curl:8\.\d+\.\d+", predict["image"])


# --- monitoring ---------------------------------------------------------------------


def registered_metrics() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "agogosml").rglob("*.py"):
        names.update(re.findall(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(agogosml_\w+)\"",
                                path.read_text()))
    return names


def test_monitoring_objects_render_only_when_enabled(rendered: dict[str, Rendered]) -> None:
    for name in MATRIX:
        chart = rendered[name]
        on = name == "monitoring"
        scraped = on or name == "keda"  # KEDA's Prometheus triggers read the scraped series
        assert bool(chart.of_kind("ServiceMonitor")) is scraped, name
        assert bool(chart.of_kind("PrometheusRule")) is on, name
        assert (chart.find("ConfigMap", f"{FULLNAME}-dashboard") is not None) is on, name


def test_service_monitor_scrapes_each_pod_once(rendered: dict[str, Rendered]) -> None:
    chart = rendered["monitoring"]
    (monitor,) = chart.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [service for service in chart.of_kind("Service")
               if selector.items() <= service["metadata"]["labels"].items()]
    assert {name_of(service) for service in scraped} == {
        f"{FULLNAME}-input-reader", f"{APP}-blue", f"{FULLNAME}-output-writer", MONITOR}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    added = {item["targetLabel"] for item in endpoint["relabelings"]}
    assert added == {"slot", "component", "agogosml_release"}  # what the alerts select on


def test_alerts_use_metrics_the_services_export(rendered: dict[str, Rendered]) -> None:
    (rule,) = rendered["monitoring"].of_kind("PrometheusRule")
    alerts = {item["alert"]: item for group in rule["spec"]["groups"]
              for item in group["rules"]}
    assert {"AgogosmlAppErrorRate", "AgogosmlDeadLetterRate", "AgogosmlConsumerLag",
            "AgogosmlAppP99Latency"} <= set(alerts)
    known = registered_metrics()
    for name, alert in alerts.items():
        expr: str = alert["expr"]
        assert f'namespace="{NAMESPACE}",agogosml_release="{RELEASE}"' in expr, name
        metrics = re.findall(r"\b(agogosml_\w+)[{\[]", expr)
        assert metrics or expr.startswith("up{"), name
        for metric in metrics:
            base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
            assert base in known, f"{name} uses {metric}, which no service exports"


def test_a_stalled_reader_alerts_before_liveness_restarts_it(
        rendered: dict[str, Rendered]) -> None:
    (rule,) = rendered["monitoring"].of_kind("PrometheusRule")
    alerts = {item["alert"]: item for group in rule["spec"]["groups"]
              for item in group["rules"]}
    stalled = alerts["AgogosmlReaderStalled"]
    selector = f'namespace="{NAMESPACE}",agogosml_release="{RELEASE}"'
    assert stalled["expr"].strip() == (
        f"max by (namespace, pod) (agogosml_reader_stalled{{{selector}}}) >= 1")
    assert stalled["labels"] == {"severity": "warning"}
    description = stalled["annotations"]["description"]
    for what in ("/readyz", "stalled", "Dead letters", "app's 5xx", "seconds_since_progress"):
        assert what in description, what
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    reader = values["inputReader"]
    minutes = int(stalled["for"].removesuffix("m"))
    assert stalled["for"] == values["metrics"]["prometheusRule"]["stalledFor"]
    assert reader["stallReadyS"] + minutes * 60 < reader["stallLiveS"], (
        "the gauge turns 1 at stallReadyS and the pod restarts at stallLiveS: "
        "the alert must fire in between")


def test_dashboard_shows_whether_the_reader_is_stalled() -> None:
    dashboard = json.loads((CHART / "dashboards" / "agogosml.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    assert "max(agogosml_reader_stalled)" in exprs


def test_dashboard_config_map_holds_the_dashboard(rendered: dict[str, Rendered]) -> None:
    config_map = rendered["monitoring"].get("ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = config_map["data"].values()
    assert json.loads(content) == json.loads(
        (CHART / "dashboards" / "agogosml.json").read_text())


# --- scheduled retraining -----------------------------------------------------------


def retrain_job(rendered: Rendered) -> tuple[Manifest, Manifest, Manifest]:
    """The retraining CronJob, its Jobs' spec and their one container."""
    cron_job = rendered.get("CronJob", RETRAIN)
    job = cron_job["spec"]["jobTemplate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    return cron_job, job, container


def retrain_command(container: Manifest) -> argparse.Namespace:
    """The container's command line, parsed by the real `agogosml retrain` parser."""
    command: list[str] = container["command"] + container["args"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts, f"{command[0]} is not a console script of the package"
    parser = argparse.ArgumentParser(prog=command[0])
    add_modelloop_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(command[1:])


def test_retraining_is_off_by_default(rendered: dict[str, Rendered], helm: Helm,
                                      tmp_path: Path) -> None:
    assert yaml.safe_load((CHART / "values.yaml").read_text())["retraining"]["enabled"] is False
    for name in MATRIX:
        assert bool(rendered[name].of_kind("CronJob")) is (name == "retraining"), name
    assert "Retraining" not in helm.notes(tmp_path, ["minimal"])


def test_retraining_runs_a_scheduled_retrain(rendered: dict[str, Rendered]) -> None:
    chart = rendered["retraining"]
    (cron_job,) = chart.of_kind("CronJob")
    cron_job, job, container = retrain_job(chart)
    assert cron_job["apiVersion"] == "batch/v1"
    assert cron_job["metadata"]["labels"]["app.kubernetes.io/component"] == "retrain"
    spec = cron_job["spec"]
    assert spec["schedule"] == "30 2 * * 1-5"
    assert "timeZone" not in spec
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (1, 5400)
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert container["command"] == ["agogosml", "retrain"]
    assert container["args"][:4] == ["--trigger", "schedule",
                                     "--dataset", "/datasets/fraud/transactions.csv"]
    args = retrain_command(container)
    assert args.command == "retrain"
    assert args.trigger == "schedule"
    assert args.dataset == Path("/datasets/fraud/transactions.csv")
    assert args.tracking_uri == "http://mlflow:5000"  # app.mlflowTrackingUri
    assert args.model_name == "fraud"
    assert (args.estimator, args.min_roc_auc) == ("hist_gradient_boosting", 0.7)  # extraArgs
    assert container["image"] == f"ghcr.io/agogosml/agogosml-app:{TAG}"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlflow-credentials"}}]


def test_a_rejected_candidate_fails_the_job_without_retries(
        rendered: dict[str, Rendered]) -> None:
    """`agogosml retrain` exits 1 when the gate rejects; training again on the same data
    would only be rejected again. Evicted pods do not count against backoffLimit."""
    _, job, container = retrain_job(rendered["retraining"])
    fail_job, ignore = job["podFailurePolicy"]["rules"]
    assert fail_job == {"action": "FailJob", "onExitCodes": {
        "containerName": container["name"], "operator": "In", "values": [3]}}
    assert ignore == {"action": "Ignore", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}


def test_retraining_pods_are_hardened_jobs(rendered: dict[str, Rendered]) -> None:
    chart = rendered["retraining"]
    _, job, container = retrain_job(chart)
    spec = job["template"]["spec"]
    service = pod_spec(app_deployments(chart)["blue"])
    for key in ("securityContext", "automountServiceAccountToken", "serviceAccountName",
                "enableServiceLinks"):
        assert spec[key] == service[key], key
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"] == only_container(app_deployments(chart)["blue"])[
        "securityContext"]
    for key, value in HARDENED.items():
        assert container["securityContext"][key] is value, key
    for probe in ("livenessProbe", "readinessProbe", "startupProbe", "ports"):
        assert probe not in container, f"a Job has no {probe}"
    assert env_values(container)["HOME"] == "/tmp"
    labels = job["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "retrain"
    assert "helm.sh/chart" not in labels
    assert "annotations" not in job["template"]["metadata"], "nothing to scrape"
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]
    assert mounts["dataset"] == {"name": "dataset", "mountPath": "/datasets", "readOnly": True}
    assert volumes["dataset"]["persistentVolumeClaim"] == {
        "claimName": "fraud-training-data", "readOnly": True}
    # no PodDisruptionBudget, Service or ServiceMonitor picks the Jobs' pods
    for budget in chart.of_kind("PodDisruptionBudget"):
        assert not budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_retraining_dataset_volume_defaults_to_the_dataset_folder(helm: Helm) -> None:
    chart = helm.template(["retraining"], sets={"retraining.datasetVolume.mountPath": ""})
    _, job, container = retrain_job(chart)
    assert {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}[
        "dataset"] == "/datasets/fraud"
    baked = helm.template(["retraining"], sets={"retraining.datasetVolume.mountPath": "",
                                                "retraining.datasetVolume.existingClaim": ""})
    _, job, container = retrain_job(baked)
    assert {mount["name"] for mount in container["volumeMounts"]} == {"tmp", "data"}
    assert {volume["name"] for volume in job["template"]["spec"]["volumes"]} == {"tmp", "data"}


def test_retraining_follows_the_apps_mlflow_unless_told_otherwise(helm: Helm) -> None:
    app = helm.template(["retraining"], sets={"app.mlflowTrackingUri": "https://mlflow.example"})
    assert retrain_command(retrain_job(app)[2]).tracking_uri == "https://mlflow.example"
    own = helm.template(["retraining"], sets={
        "app.mlflowTrackingUri": "https://mlflow.example",
        "retraining.mlflowTrackingUri": "http://mlflow-training:5000"})
    assert retrain_command(retrain_job(own)[2]).tracking_uri == "http://mlflow-training:5000"


def test_retraining_time_zone_and_a_long_release_name(helm: Helm) -> None:
    release = "a-release-name-long-enough-that-names-need-shortening"
    chart = helm.template(["retraining"], sets={"retraining.timeZone": "Europe/Berlin"},
                          release=release)
    (cron_job,) = chart.of_kind("CronJob")
    assert cron_job["spec"]["timeZone"] == "Europe/Berlin"
    # the Jobs a CronJob creates add 11 characters to its name, within 63
    assert len(name_of(cron_job)) <= 52
    assert name_of(cron_job).endswith("-retrain")


@pytest.mark.parametrize(("sets", "message"), [
    ({"retraining.image.tag": "latest"},
     "at '/retraining/image/tag': value must be 'an immutable version"),
    ({"retraining.dataset": "transactions.csv"}, "at '/retraining/dataset'"),
    ({"retraining.schedule": ""}, "at '/retraining/schedule': minLength"),
    ({"retraining.schedule": "0 3 * *"}, "at '/retraining/schedule'"),
    ({"retraining.timeZone": "Europe Berlin"}, "at '/retraining/timeZone'"),
    ({"retraining.concurrencyPolicy": "Allow"},
     "at '/retraining/concurrencyPolicy': value must be one of 'Forbid', 'Replace'"),
    ({"retraining.backoffLimit": "-1"}, "at '/retraining/backoffLimit'"),
    ({"retraining.datasetVolume.claimName": "x"},
     "at '/retraining/datasetVolume': additional properties 'claimName'"),
    ({"retraining.cron": "x"}, "at '/retraining': additional properties 'cron'"),
])
def test_schema_rejects_bad_retraining_values(helm: Helm, sets: dict[str, str],
                                              message: str) -> None:
    error = fails(helm, "retraining", sets=sets)
    assert "don't meet the specifications of the schema" in error
    assert message in error


def test_enabling_retraining_without_a_tag_or_dataset_says_what_is_missing(helm: Helm) -> None:
    error = fails(helm, "minimal", sets={"retraining.enabled": "true"})
    assert "at '/retraining/image': missing property 'tag'" in error
    assert "at '/retraining': missing property 'dataset'" in error
    skip = ("--skip-schema-validation",)
    assert "retraining.image.tag is required: an immutable version" in fails(
        helm, "minimal", sets={"retraining.enabled": "true"}, extra=skip)
    assert "retraining.dataset is required while retraining.enabled is true" in fails(
        helm, "minimal", sets={"retraining.enabled": "true"},
        set_strings={"retraining.image.tag": TAG}, extra=skip)
    assert "retraining.image.tag is latest" in fails(
        helm, "retraining", sets={"retraining.image.tag": "latest"}, extra=skip)


@pytest.mark.parametrize(("sets", "message"), [
    ({"retraining.dataset": "transactions.csv"}, "retraining.dataset transactions.csv is relative"),
    ({"retraining.datasetVolume.mountPath": "/data"},
     "retraining.datasetVolume.mountPath is /data, which the pod needs for itself"),
    ({"retraining.dataset": "/tmp/t.csv", "retraining.datasetVolume.mountPath": ""},
     "retraining.datasetVolume.mountPath is /tmp, which the pod needs for itself"),
    ({"retraining.dataset": "/training/t.csv"},
     "retraining.dataset /training/t.csv is not inside retraining.datasetVolume.mountPath "
     "/datasets"),
    ({"retraining.datasetVolume.existingClaim": ""},
     "retraining.datasetVolume.mountPath is set but retraining.datasetVolume.existingClaim "
     "is empty"),
])
def test_templates_refuse_a_dataset_the_pod_cannot_read(helm: Helm, sets: dict[str, str],
                                                        message: str) -> None:
    assert message in fails(helm, "retraining", sets=sets, extra=("--skip-schema-validation",))


# --- NOTES.txt ----------------------------------------------------------------------


def test_notes_tell_how_to_reach_and_promote(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path, ["minimal"])
    assert "Production slot: blue" in notes
    assert f"port-forward service/{APP} 8000:8000" in notes
    assert "curl -s localhost:8000/predict" in notes
    assert "--reuse-values --set productionSlot=green" in notes


def test_notes_with_shadow_promote_in_one_command(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path, ["shadow"])
    assert "Shadow scoring: on, 25% of events mirrored to green" in notes
    assert "--reuse-values --set productionSlot=green" in notes
    assert "agogosml rollout promote" in notes
    assert "shadow.enabled=false" not in notes
    assert "rollout status" not in notes


def test_notes_with_retraining_say_how_to_run_it_now(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path, ["retraining"])
    (line,) = [line for line in notes.splitlines() if line.startswith("Retraining:")]
    assert f'CronJob {RETRAIN} runs on "30 2 * * 1-5"' in line
    assert "never promotes" in line
    assert (f"kubectl --namespace {NAMESPACE} create job --from=cronjob/{RETRAIN} "
            f"{RETRAIN}-manual") in line
