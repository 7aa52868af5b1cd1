"""The chart's manifests against a real Kubernetes API server.

`helm template` and values.schema.json know nothing about Kubernetes' own rules (label
syntax, selectors that match their pod template, field names, quantities, port names).
Here every object the chart renders, for every values file of the matrix, goes through
server-side apply with dry run and strict field validation, as `kubectl apply
--server-side --dry-run=server` would, and must be accepted. A release with shadow
scoring is then installed for real and promoted, to show that promoting changes only the
Services.

ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs. The real ones are
not available offline, so stand-ins from tests/k8s/crds/ are installed: same group,
version, kind and scope, with `spec` kept as given (x-kubernetes-preserve-unknown-fields).
For those two kinds the server checks apiVersion, kind, scope and metadata only; their
specs are checked by tests/packaging/test_chart.py. KEDA's ScaledObject and
TriggerAuthentication are checked in full, against KEDA's own CRDs (tests/k8s/crds/keda/).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.k8s.kube import ManifestRejected, apply_manifests
from tests.packaging.crds import KEDA_CRDS, MONITORING_CRDS, install_crds
from tests.packaging.helm import (
    CHART,
    MATRIX,
    Helm,
    Manifest,
    Rendered,
    name_of,
    values_file,
)

pytestmark = pytest.mark.timeout(600)

SCHEMA_FREE_KINDS = {"ServiceMonitor", "PrometheusRule"}  # spec not validated, see above
SLOT_LABEL = "agogosml.io/slot"
RELEASE = "agogosml"


@pytest.fixture(scope="module")
def monitoring_crds(api_client: client.ApiClient) -> set[str]:
    """Install the stand-in CRDs, and KEDA's (the matrix renders ScaledObjects); return
    the stand-ins' kinds."""
    install_crds(api_client, KEDA_CRDS)
    return install_crds(api_client, MONITORING_CRDS)


def dry_run_each(api_client: client.ApiClient, objects: list[Manifest],
                 namespace: str) -> tuple[list[Manifest], list[ManifestRejected]]:
    """Every object on its own, so one run reports every rejection."""
    accepted: list[Manifest] = []
    rejected: list[ManifestRejected] = []
    for item in objects:
        try:
            accepted += apply_manifests(api_client, [item], namespace, dry_run=True)
        except ManifestRejected as error:
            rejected.append(error)
    return accepted, rejected


@pytest.mark.parametrize("values", MATRIX)
def test_every_rendered_object_is_accepted(helm: Helm, api_client: client.ApiClient,
                                           namespace: str, monitoring_crds: set[str],
                                           values: str) -> None:
    rendered = helm.template([values], namespace=namespace)
    accepted, rejected = dry_run_each(api_client, list(rendered.objects), namespace)
    assert not rejected, "\n".join(str(error) for error in rejected)
    assert [(item["kind"], name_of(item)) for item in accepted] == [
        (item["kind"], name_of(item)) for item in rendered.objects]
    # The server's answer is the object as it would store it: defaulted, not altered.
    for sent, stored in zip(rendered.objects, accepted, strict=True):
        assert stored["metadata"]["namespace"] == namespace
        assert stored["metadata"]["labels"] == sent["metadata"]["labels"]
        if sent["kind"] == "Deployment":
            assert stored["spec"]["template"]["spec"]["containers"][0]["env"] == \
                sent["spec"]["template"]["spec"]["containers"][0]["env"]
        if sent["kind"] == "CronJob":
            sent_job, stored_job = (item["spec"]["jobTemplate"]["spec"] for item in (sent, stored))
            assert stored_job["podFailurePolicy"] == sent_job["podFailurePolicy"]
            sent_pod, stored_pod = (job["template"]["spec"] for job in (sent_job, stored_job))
            for key in ("command", "args", "env", "securityContext"):
                assert stored_pod["containers"][0][key] == sent_pod["containers"][0][key], key


def test_the_matrix_covers_every_kind_the_chart_renders(helm: Helm,
                                                        monitoring_crds: set[str]) -> None:
    """What the test above validated, kind by kind; and what it could not fully. Kinds
    are found in the templates and in the helpers (_*.tpl) that render whole objects."""
    templated = {kind for path in (CHART / "templates").rglob("*")
                 if path.suffix in {".yaml", ".tpl"}
                 for kind in re.findall(r"^kind: (\w+)$", path.read_text(), re.MULTILINE)}
    rendered = {item["kind"] for values in MATRIX
                for item in helm.template([values]).objects}
    assert rendered == templated, (
        f"kinds no values file renders: {sorted(templated - rendered)}; "
        f"rendered but not found in a template: {sorted(rendered - templated)}")
    assert rendered & monitoring_crds == SCHEMA_FREE_KINDS, (
        "kinds whose spec only a stand-in CRD checks (metadata, apiVersion, scope)")


# --- the server catches what the chart's own checks let through -----------------------


def app_deployment(rendered: Rendered) -> Manifest:
    return rendered.get("Deployment", f"{RELEASE}-app-blue")


def corrupt_slot_label(item: Manifest) -> None:
    item["spec"]["template"]["metadata"]["labels"][SLOT_LABEL] = "blue green"


def mismatch_selector(item: Manifest) -> None:
    item["spec"]["template"]["metadata"]["labels"][SLOT_LABEL] = "green"


def misspell_probe(item: Manifest) -> None:
    container = item["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")


def long_port_name(item: Manifest) -> None:
    item["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "http-predictions"


@pytest.mark.parametrize(("corrupt", "status", "expected"), [
    (corrupt_slot_label, 422, 'Invalid value: "blue green"'),
    (mismatch_selector, 422, "`selector` does not match template `labels`"),
    (misspell_probe, 500, ".readinessprobe: field not declared in schema"),
    (long_port_name, 422, "must be no more than 15 characters"),
])
def test_a_broken_deployment_is_refused(helm: Helm, api_client: client.ApiClient,
                                        namespace: str, corrupt: Any, status: int,
                                        expected: str) -> None:
    """A rendered Deployment, broken as a template edit could break it: the server says
    no, so the test above can fail."""
    item = app_deployment(helm.template(["minimal"], namespace=namespace))
    apply_manifests(api_client, [item], namespace, dry_run=True)  # as rendered: accepted
    corrupt(item)
    with pytest.raises(ManifestRejected) as rejected:
        apply_manifests(api_client, [item], namespace, dry_run=True)
    assert (rejected.value.kind, rejected.value.status) == ("Deployment", status)
    assert expected in rejected.value.server_message


def test_values_the_schema_accepts_can_still_be_refused(helm: Helm,
                                                        api_client: client.ApiClient,
                                                        namespace: str) -> None:
    """values.schema.json takes any string as a pod label value; Kubernetes does not."""
    rendered = helm.template(["minimal"], sets={"podLabels.team": "data science"},
                             namespace=namespace)
    _, rejected = dry_run_each(api_client, list(rendered.objects), namespace)
    assert {(error.kind, error.name) for error in rejected} == {
        ("Deployment", name_of(item)) for item in rendered.of_kind("Deployment")}
    for error in rejected:
        assert error.status == 422
        assert 'spec.template.labels: Invalid value: "data science"' in error.server_message


# --- a real release ----------------------------------------------------------------------


def test_promoting_with_shadow_on_changes_only_the_services(helm: Helm, kubeconfig: Path,
                                                            api_client: client.ApiClient,
                                                            namespace: str,
                                                            tmp_path: Path) -> None:
    """Both slots know both writers, so `helm upgrade --reuse-values --set
    productionSlot=green` is accepted with shadow on and leaves every Deployment at its
    generation: no pod template changed, no pod restarts."""
    cluster = helm.on_cluster(kubeconfig, tmp_path / "helm")
    cluster.check("install", RELEASE, str(CHART), "--namespace", namespace,
                  "--values", str(values_file("shadow")))
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)

    def generations() -> dict[str, int]:
        return {item.metadata.name: item.metadata.generation
                for item in apps.list_namespaced_deployment(namespace).items}

    def selected() -> list[str]:
        """The slots the production and the preview Service select."""
        return [core.read_namespaced_service(f"{RELEASE}-{role}", namespace)
                .spec.selector[SLOT_LABEL] for role in ("app", "app-preview")]

    before = generations()
    assert {f"{RELEASE}-app-blue", f"{RELEASE}-app-green",
            f"{RELEASE}-output-writer-shadow"} <= set(before)
    assert selected() == ["blue", "green"]
    cluster.check("upgrade", RELEASE, str(CHART), "--namespace", namespace,
                  "--reuse-values", "--set", "productionSlot=green")
    assert selected() == ["green", "blue"]
    assert generations() == before
