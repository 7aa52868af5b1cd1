"""The session's Kubernetes API server is a real one: it stores, validates, defaults,
allocates, authorizes and dry-runs as a cluster's would."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.k8s.kube import SERVICE_CIDR, ManifestRejected, apply_manifests, mark_deployment_ready

LABELS = {"app.kubernetes.io/name": "scorer"}


def deployment(name: str = "scorer", replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "agogosml/app:test",
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                }]},
            },
            **spec,
        },
    }


def service(name: str = "scorer") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {"selector": dict(LABELS),
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def test_the_server_is_kubernetes(api_client: client.ApiClient, kubeconfig: Path) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1"
    assert version.git_version.startswith(f"v1.{version.minor}.")
    # The kubeconfig works for any client that reads one, not only this fixture's.
    other = config.new_client_from_config(config_file=str(kubeconfig))
    with other:
        names = {ns.metadata.name for ns in client.CoreV1Api(other).list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_create_deployment_and_service_then_mark_ready(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment(replicas=3))
    svc = core.create_namespaced_service(namespace, service())

    # The server allocated a ClusterIP from its range and defaulted the Deployment.
    assert ipaddress.ip_address(svc.spec.cluster_ip) in ipaddress.ip_network(SERVICE_CIDR)
    stored = apps.read_namespaced_deployment("scorer", namespace)
    assert stored.spec.strategy.type == "RollingUpdate"
    assert stored.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert not stored.status.ready_replicas  # nothing runs Pods here

    mark_deployment_ready(api_client, namespace, "scorer")

    after = apps.read_namespaced_deployment("scorer", namespace)
    assert after.status.ready_replicas == after.spec.replicas == 3
    assert after.status.available_replicas == 3
    assert after.metadata.generation == stored.metadata.generation  # status is apart


def test_server_side_dry_run_apply_stores_nothing(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    preview = apply_manifests(api_client, [deployment(), service()], namespace, dry_run=True)

    # The answer is the object as the server would store it, defaults included...
    assert preview[0]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == (
        "IfNotPresent")
    assert preview[1]["spec"]["type"] == "ClusterIP"
    # ...but nothing was stored.
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("scorer", namespace)
    assert missing.value.status == 404

    applied = apply_manifests(api_client, [deployment(), service()], namespace, dry_run=False)
    again = apply_manifests(api_client, [deployment(), service()], namespace, dry_run=False)
    assert apps.read_namespaced_deployment("scorer", namespace).spec.replicas == 2
    # Re-applying the same manifests is a no-op.
    assert [o["metadata"]["resourceVersion"] for o in again] == [
        o["metadata"]["resourceVersion"] for o in applied]


@pytest.mark.parametrize(
    ("manifest", "status", "expected"),
    [
        pytest.param({**deployment(), "metadata": {"name": "scorer",
                                                   "labels": {"tier": "not valid!"}}},
                     422, ['metadata.labels: Invalid value: "not valid!"'],
                     id="bad-label-value"),
        pytest.param(deployment(replicas=-1),
                     422, ["spec.replicas: Invalid value: -1", "greater than or equal to 0"],
                     id="negative-replicas"),
        pytest.param(deployment(selector={"matchLabels": {"app.kubernetes.io/name": "other"}}),
                     422, ["spec.template.metadata.labels", "does not match"],
                     id="selector-mismatch"),
        # Server-side apply checks fields against the schema before validation, and
        # answers an unknown one with 500 (as `kubectl apply --server-side` shows too).
        pytest.param(deployment(replicaz=2),
                     500, [".spec.replicaz: field not declared in schema"],
                     id="unknown-field"),
    ],
)
def test_invalid_manifest_is_rejected_by_the_server(
    api_client: client.ApiClient, namespace: str, manifest: dict[str, Any], status: int,
    expected: list[str],
) -> None:
    with pytest.raises(ManifestRejected) as rejected:
        apply_manifests(api_client, [service(), manifest], namespace, dry_run=True)
    error = rejected.value
    assert (error.kind, error.name, error.status) == ("Deployment", "scorer", status)
    for part in expected:
        assert part in error.server_message
    assert str(error).startswith("Deployment/scorer rejected (")


def test_rbac_is_enforced(api_client: client.ApiClient, namespace: str) -> None:
    """Authorization is RBAC, so a chart's Role and RoleBinding can be checked for what
    they really grant."""
    user = f"system:serviceaccount:{namespace}:scorer"

    def may(verb: str, resource: str) -> bool:
        review = client.AuthorizationV1Api(api_client).create_subject_access_review(
            client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                user=user, groups=["system:serviceaccounts"],
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, resource=resource))))
        return bool(review.status.allowed)

    assert not may("get", "configmaps")
    apply_manifests(api_client, [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "scorer"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "read-config"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "scorer-read-config"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "read-config"},
         "subjects": [{"kind": "ServiceAccount", "name": "scorer", "namespace": namespace}]},
    ], namespace, dry_run=False)
    assert may("get", "configmaps")
    assert not may("delete", "configmaps")
