"""The chart's KEDA objects against KEDA's own CRDs (tests/k8s/crds/keda/, unmodified from
the KEDA release) on a real API server: field names, types (trigger metadata values are
strings) and KEDA's CEL rule minReplicaCount <= maxReplicaCount. Every values file of the
matrix also goes through the server in test_chart_on_apiserver.py; here the ScaledObjects
and TriggerAuthentications of settings the matrix does not hold, and proof that the
server does check them.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.k8s.kube import ManifestRejected, apply_manifests
from tests.packaging.crds import KEDA_CRDS, install_crds
from tests.packaging.helm import RELEASE, Helm, Manifest, Rendered

pytestmark = pytest.mark.timeout(600)

KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


@pytest.fixture(scope="module")
def keda_crds(api_client: client.ApiClient) -> set[str]:
    return install_crds(api_client, KEDA_CRDS)


def keda_objects(chart: Rendered) -> list[Manifest]:
    return [item for item in chart.objects if item["kind"] in KEDA_KINDS]


def test_the_crds_define_the_kinds_the_chart_renders(keda_crds: set[str]) -> None:
    assert keda_crds == KEDA_KINDS


@pytest.mark.parametrize(("values", "sets"), [
    ("keda", {}),
    ("keda-eventhubs", {}),
    ("keda", {"kafka.existingSecret": "kafka-credentials",
              "kafka.sasl.password": ""}),
    ("keda", {"kafka.securityProtocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "PLAIN"}),
    ("minimal", {"inputReader.keda.enabled": "true", "inputReader.keda.partitions": "1"}),
    ("keda-eventhubs", {"eventhubs.existingSecret": "",
                        "eventhubs.connectionString": "Endpoint=sb://x/;EntityPath=in",
                        "eventhubs.checkpointBlobConnectionString": "DefaultEndpoints=x"}),
])
def test_every_keda_object_is_accepted(helm: Helm, api_client: client.ApiClient,
                                       namespace: str, keda_crds: set[str], values: str,
                                       sets: dict[str, str]) -> None:
    objects = keda_objects(helm.template([values], sets=sets, namespace=namespace))
    assert objects
    stored = apply_manifests(api_client, objects, namespace, dry_run=True)
    for sent, kept in zip(objects, stored, strict=True):
        assert kept["spec"] == {**kept["spec"], **sent["spec"]}, "the server kept the spec"


def scaled_object(helm: Helm, namespace: str) -> Manifest:
    chart = helm.template(["keda"], namespace=namespace)
    return chart.get("ScaledObject", f"{RELEASE}-input-reader")


def min_above_max(item: Manifest) -> None:
    item["spec"]["minReplicaCount"], item["spec"]["maxReplicaCount"] = 3, 2


def number_in_metadata(item: Manifest) -> None:
    item["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 500


def misspelled_field(item: Manifest) -> None:
    item["spec"]["minReplicas"] = item["spec"].pop("minReplicaCount")


def no_trigger_type(item: Manifest) -> None:
    del item["spec"]["triggers"][0]["type"]


@pytest.mark.parametrize(("corrupt", "expected"), [
    (min_above_max, "minReplicaCount must be less than or equal to maxReplicaCount"),
    (number_in_metadata, ".spec.triggers[0].metadata.lagThreshold: expected string"),
    (misspelled_field, ".spec.minReplicas: field not declared in schema"),
    (no_trigger_type, "spec.triggers[0].type: Required value"),
])
def test_a_broken_scaled_object_is_refused(helm: Helm, api_client: client.ApiClient,
                                           namespace: str, keda_crds: set[str],
                                           corrupt: Any, expected: str) -> None:
    """What the chart's own checks could let through, the real CRD does not: so the test
    above can fail."""
    item = scaled_object(helm, namespace)
    apply_manifests(api_client, [item], namespace, dry_run=True)
    corrupt(item)
    with pytest.raises(ManifestRejected) as rejected:
        apply_manifests(api_client, [item], namespace, dry_run=True)
    assert rejected.value.kind == "ScaledObject"
    assert expected in rejected.value.server_message
