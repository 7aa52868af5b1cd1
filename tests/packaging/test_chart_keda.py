"""KEDA in the chart: ScaledObjects that take the reader, the app slots and the writers to
zero when idle, a TriggerAuthentication on the Secrets the pods already read, and the
values that would make a broken or contradictory autoscaling setup refused with a reason.
Their fields are checked against KEDA's own CRDs in test_chart_keda_on_apiserver.py.
"""

from __future__ import annotations

import pytest

from tests.packaging.helm import (
    MATRIX,
    NAMESPACE,
    RELEASE,
    Helm,
    Manifest,
    Rendered,
    env_of,
    env_values,
    load_values,
    name_of,
    only_container,
)

pytestmark = pytest.mark.timeout(1_200)

READER = f"{RELEASE}-input-reader"
WRITER = f"{RELEASE}-output-writer"
SHADOW_WRITER = f"{RELEASE}-output-writer-shadow"
APP_BLUE, APP_GREEN = f"{RELEASE}-app-blue", f"{RELEASE}-app-green"
KEDA_MATRIX = ("keda", "keda-eventhubs")
PLAIN_KAFKA_READER = {"inputReader.keda.enabled": "true", "inputReader.keda.partitions": "3",
                      "inputReader.keda.maxReplicaCount": "3"}


def fails(helm: Helm, *values: str, sets: dict[str, str] | None = None) -> str:
    done = helm.template_run(list(values), sets=sets)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr


def scaled_objects(chart: Rendered) -> dict[str, Manifest]:
    return {name_of(item): item for item in chart.of_kind("ScaledObject")}


def reader_container(chart: Rendered) -> Manifest:
    return only_container(chart.get("Deployment", READER))


def secret_ref(container: Manifest, variable: str) -> dict[str, str]:
    """The Secret name and key a container's variable is read from."""
    ref = env_of(container)[variable]["valueFrom"]["secretKeyRef"]
    return {"name": ref["name"], "key": ref["key"]}


def test_the_keda_values_files_are_in_the_matrix() -> None:
    """So that they are linted, rendered, checked by every matrix test and put through
    the API server with KEDA's CRDs (tests/packaging/test_chart_on_apiserver.py)."""
    assert set(KEDA_MATRIX) <= set(MATRIX)


def test_one_scaled_object_per_scaled_deployment(rendered: dict[str, Rendered]) -> None:
    chart = rendered["keda"]
    objects = scaled_objects(chart)
    assert set(objects) == {READER, APP_BLUE, APP_GREEN, WRITER, SHADOW_WRITER}
    for name, item in objects.items():
        assert item["apiVersion"] == "keda.sh/v1alpha1"
        assert item["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1",
                                                  "kind": "Deployment", "name": name}
        target = chart.get("Deployment", name)
        assert item["metadata"]["labels"]["app.kubernetes.io/component"] == \
            target["metadata"]["labels"]["app.kubernetes.io/component"]
        assert "replicas" not in target["spec"], f"{name}: KEDA's HPA owns replicas"
        assert (item["spec"]["pollingInterval"], item["spec"]["cooldownPeriod"]) == (15, 300)
    assert chart.get("Deployment", f"{RELEASE}-monitor")["spec"]["replicas"] == 1
    assert not chart.of_kind("HorizontalPodAutoscaler"), "KEDA makes its own"


def test_each_component_on_its_own_switch(rendered: dict[str, Rendered]) -> None:
    chart = rendered["keda-eventhubs"]
    assert set(scaled_objects(chart)) == {READER}
    assert "replicas" not in chart.get("Deployment", READER)["spec"]
    assert chart.get("Deployment", APP_BLUE)["spec"]["replicas"] == 2
    assert chart.get("Deployment", WRITER)["spec"]["replicas"] == 2
    for values in MATRIX:
        if values not in KEDA_MATRIX:
            assert not rendered[values].of_kind("ScaledObject"), values
            assert not rendered[values].of_kind("TriggerAuthentication"), values


def test_the_reader_goes_to_zero_and_up_to_the_partitions(
        rendered: dict[str, Rendered]) -> None:
    spec = scaled_objects(rendered["keda"])[READER]["spec"]
    values = load_values("keda")["inputReader"]["keda"]
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] == values["partitions"] == 6


def test_the_reader_scales_on_its_own_consumer_lag(rendered: dict[str, Rendered]) -> None:
    chart = rendered["keda"]
    [trigger] = scaled_objects(chart)[READER]["spec"]["triggers"]
    env = env_values(reader_container(chart))
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA wants strings"
    assert metadata["bootstrapServers"] == env["AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS"]
    assert metadata["topic"] == env["AGOGOSML_READER_INPUT_STREAM"]
    assert metadata["consumerGroup"] == env["AGOGOSML_READER_CONSUMER_GROUP"]
    assert (metadata["lagThreshold"], metadata["activationLagThreshold"]) == ("500", "0")
    assert (metadata["tls"], metadata["sasl"]) == ("enable", "scram_sha512")
    assert trigger["authenticationRef"] == {"name": READER}


def test_the_trigger_authentication_reads_what_the_reader_reads(
        rendered: dict[str, Rendered]) -> None:
    """The same Secret and key as the reader's password, and its username from the
    reader's own variable: rotating a credential rotates it for KEDA too."""
    chart = rendered["keda"]
    container = reader_container(chart)
    [auth] = chart.of_kind("TriggerAuthentication")
    assert name_of(auth) == READER
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", **secret_ref(container, "AGOGOSML_READER_KAFKA_SASL_PASSWORD")}]
    [username] = auth["spec"]["env"]
    assert username == {"parameter": "username", "containerName": container["name"],
                        "name": "AGOGOSML_READER_KAFKA_SASL_USERNAME"}
    assert env_values(container)[username["name"]] == "agogosml"
    secret = chart.get("Secret", RELEASE)
    assert auth["spec"]["secretTargetRef"][0]["key"] in secret["data"]


def test_event_hubs_scales_on_unprocessed_events_from_the_checkpoints(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["keda-eventhubs"]
    container = reader_container(chart)
    [trigger] = scaled_objects(chart)[READER]["spec"]["triggers"]
    env = env_values(container)
    assert trigger["type"] == "azure-eventhub"
    assert trigger["metadata"] == {
        "eventHubName": env["AGOGOSML_READER_INPUT_STREAM"],
        "consumerGroup": env["AGOGOSML_READER_CONSUMER_GROUP"],
        "blobContainer": env["AGOGOSML_READER_EVENTHUBS_CHECKPOINT_CONTAINER"],
        "checkpointStrategy": "blobMetadata",
        "unprocessedEventThreshold": "1000",
        "activationUnprocessedEventThreshold": "0",
    }
    [auth] = chart.of_kind("TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": name_of(auth)}
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection",
         **secret_ref(container, "AGOGOSML_READER_EVENTHUBS_CONNECTION_STRING")},
        {"parameter": "storageConnection",
         **secret_ref(container, "AGOGOSML_READER_EVENTHUBS_CHECKPOINT_BLOB_CONNECTION_STRING")},
    ]
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {"eventhubs-credentials"}
    assert "env" not in auth["spec"]


def test_no_trigger_authentication_when_the_broker_needs_no_credentials(helm: Helm) -> None:
    chart = helm.template(["minimal"], sets=PLAIN_KAFKA_READER)
    [trigger] = scaled_objects(chart)[READER]["spec"]["triggers"]
    assert "authenticationRef" not in trigger
    assert "sasl" not in trigger["metadata"]
    assert trigger["metadata"]["tls"] == "disable"
    assert not chart.of_kind("TriggerAuthentication")


def test_app_slots_and_writers_scale_on_prometheus(rendered: dict[str, Rendered]) -> None:
    """Their own events per second, and the reader's batches in flight, which wait while
    no pod of theirs answers and so wake them from zero."""
    chart = rendered["keda"]
    objects = scaled_objects(chart)
    selector = f'namespace="{NAMESPACE}",agogosml_release="{RELEASE}"'
    own = {APP_BLUE: ('agogosml_app_events_scored_total', 'component="app",slot="blue"'),
           APP_GREEN: ('agogosml_app_events_scored_total', 'component="app",slot="green"'),
           WRITER: ('agogosml_writer_events_written_total', 'component="output-writer"'),
           SHADOW_WRITER: ('agogosml_writer_events_written_total',
                           'component="output-writer-shadow"')}
    for name, (counter, series) in own.items():
        spec = objects[name]["spec"]
        rate, waiting = spec["triggers"]
        for trigger in (rate, waiting):
            assert trigger["type"] == "prometheus"
            assert trigger["metadata"]["serverAddress"] == \
                "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
            assert trigger["metadata"]["activationThreshold"] == "0"
        assert rate["metadata"]["query"] == f"sum(rate({counter}{{{selector},{series}}}[2m]))"
        assert waiting["metadata"]["query"] == (
            f'sum(agogosml_reader_batches_in_flight{{{selector},component="input-reader"}})')
        assert waiting["metadata"]["threshold"] == \
            env_values(reader_container(chart))["AGOGOSML_READER_MAX_IN_FLIGHT"]
    assert objects[APP_BLUE]["spec"]["minReplicaCount"] == 0
    assert objects[APP_BLUE]["spec"]["maxReplicaCount"] == 8
    assert objects[APP_BLUE]["spec"]["triggers"][0]["metadata"]["threshold"] == "2000"
    assert objects[WRITER]["spec"]["minReplicaCount"] == 1
    assert objects[WRITER]["spec"]["triggers"][0]["metadata"]["threshold"] == "5000"


def test_a_prometheus_selector_of_your_own(helm: Helm) -> None:
    chart = helm.template(["minimal"], sets={"app.keda.enabled": "true",
                                             "keda.prometheus.selector": 'cluster="eu1"'})
    [rate, _] = scaled_objects(chart)[APP_BLUE]["spec"]["triggers"]
    assert rate["metadata"]["query"] == (
        'sum(rate(agogosml_app_events_scored_total{cluster="eu1",'
        'component="app",slot="blue"}[2m]))')


def test_a_promotion_changes_no_scaled_object(helm: Helm) -> None:
    blue = helm.template(["keda"])
    green = helm.template(["keda"], sets={"productionSlot": "green"})
    assert blue.of_kind("ScaledObject") == green.of_kind("ScaledObject")


# --- refused, with the reason ------------------------------------------------------------


def test_hpa_and_keda_on_the_app_are_refused(helm: Helm) -> None:
    message = fails(helm, "keda", sets={"app.autoscaling.enabled": "true"})
    assert "HPA and KEDA are mutually exclusive" in message
    helm.template(["keda"], sets={"app.keda.enabled": "false",
                                  "app.autoscaling.enabled": "true"})


def test_more_readers_than_partitions_are_refused(helm: Helm) -> None:
    message = fails(helm, "keda", sets={"inputReader.keda.maxReplicaCount": "7"})
    assert ("inputReader.keda.maxReplicaCount 7 is above inputReader.keda.partitions 6: "
            "one consumer group gives each partition to one reader") in message
    assert "agogosml.input" in message


def test_the_partition_count_is_required(helm: Helm) -> None:
    message = fails(helm, "minimal", sets={"inputReader.keda.enabled": "true"})
    assert "the partition count of inputReader.inputStream (at least 1)" in message


@pytest.mark.parametrize("component", ["inputReader", "app", "outputWriter"])
def test_min_above_max_is_refused(helm: Helm, component: str) -> None:
    sets = {**PLAIN_KAFKA_READER, "metrics.serviceMonitor.enabled": "true",
            f"{component}.keda.enabled": "true", f"{component}.keda.minReplicaCount": "3",
            f"{component}.keda.maxReplicaCount": "2"}
    message = fails(helm, "minimal", sets=sets)
    assert f"{component}.keda.minReplicaCount 3 is above {component}.keda.maxReplicaCount 2" \
        in message


def test_prometheus_triggers_need_series_to_find(helm: Helm) -> None:
    message = fails(helm, "minimal", sets={"outputWriter.keda.enabled": "true"})
    assert "set metrics.serviceMonitor.enabled=true, or keda.prometheus.selector" in message


def test_the_event_hubs_kafka_endpoint_is_refused(helm: Helm) -> None:
    message = fails(helm, "eventhubs-kafka-endpoint", sets=PLAIN_KAFKA_READER)
    assert "inputReader.keda with kafka.eventhubsEndpoint is not supported" in message


def test_native_event_hubs_needs_the_checkpoint_store(helm: Helm) -> None:
    message = fails(helm, "keda-eventhubs", sets={"eventhubs.existingSecret": "",
                                                  "eventhubs.connectionString": "x"})
    assert "needs the checkpoint store" in message


@pytest.mark.parametrize(("key", "value"), [
    ("inputReader.keda.lagThreshold", "0"),
    ("app.keda.minReplicaCount", "-1"),
    ("outputWriter.keda.eventsPerSecondPerReplica", "0"),
    ("keda.prometheus.serverAddress", "prometheus:9090"),
])
def test_the_schema_refuses_nonsense(helm: Helm, key: str, value: str) -> None:
    message = fails(helm, "keda", sets={key: value})
    assert "values don't meet the specifications of the schema" in message


def test_the_schema_refuses_unknown_keda_keys(helm: Helm) -> None:
    message = fails(helm, "keda", sets={"app.keda.idleReplicaCount": "0"})
    assert "idleReplicaCount" in message


# --- the rollout tool's Role ---------------------------------------------------------


def granted_resources(chart: Rendered) -> set[str]:
    role = chart.get("Role", f"{RELEASE}-rollout")
    return {resource for rule in role["rules"] if "keda.sh" in rule["apiGroups"]
            for resource in rule["resources"]}


@pytest.mark.parametrize(("values", "sets", "expected"), [
    ("minimal", {}, set()),
    ("minimal", PLAIN_KAFKA_READER, {"scaledobjects"}),
    ("minimal", {"app.keda.enabled": "true", "metrics.serviceMonitor.enabled": "true"},
     {"scaledobjects"}),
    ("keda", {}, {"scaledobjects", "triggerauthentications"}),
    ("keda-eventhubs", {}, {"scaledobjects", "triggerauthentications"}),
])
def test_the_rollout_role_grants_keda_kinds_only_when_used(
        helm: Helm, values: str, sets: dict[str, str], expected: set[str]) -> None:
    chart = helm.template([values], sets={**sets, "rollout.rbac.create": "true"})
    assert granted_resources(chart) == expected
    kinds = {item["kind"] for item in chart.objects}
    assert ("ScaledObject" in kinds) is ("scaledobjects" in expected)
    assert ("TriggerAuthentication" in kinds) is ("triggerauthentications" in expected)
