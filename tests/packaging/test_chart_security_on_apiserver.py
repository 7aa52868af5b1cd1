"""The chart's trust boundaries on a real API server with a real helm.

- Generated tokens are kept on upgrade (the chart looks its Secret up), and each step of
  a token rotation rolls exactly the Deployments whose keys changed.
- The rollout tool's Role works and is small: as its ServiceAccount, with a token the API
  server issued for it, the rollout tool's own Python objects (HelmRelease, Cluster,
  Journal) deploy to the idle slot, promote it and retire the old slot through a real
  `helm upgrade`; the same ServiceAccount is refused what it does not need (other
  namespaces, Secrets elsewhere, RBAC beyond its own Role, pods/exec, the namespace).
- The NetworkPolicies are stored as rendered (the server adds nothing that changes what
  they allow; tests/packaging/test_chart_security.py checks what they allow).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from agogosml.rollout.cluster import Cluster, Journal
from agogosml.rollout.helm import HelmRelease
from tests.k8s.kube import KubeCluster, apply_manifests, mark_deployment_ready
from tests.packaging.helm import CHART, Helm, name_of, values_file

pytestmark = pytest.mark.timeout(600)

RELEASE = "agogosml"  # contains the chart's name, so it is also the fullname
ROLLOUT = f"{RELEASE}-rollout"
TAG_B = "0.2.0-bbbbbbb"


@pytest.fixture
def cluster_helm(helm: Helm, kubeconfig: Path, tmp_path: Path) -> Helm:
    return helm.on_cluster(kubeconfig, tmp_path / "helm")


def secret_data(api_client: client.ApiClient, namespace: str) -> dict[str, str]:
    secret = client.CoreV1Api(api_client).read_namespaced_secret(RELEASE, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def generations(api_client: client.ApiClient, namespace: str) -> dict[str, int]:
    return {item.metadata.name: item.metadata.generation
            for item in client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items}


# --- tokens across upgrades ---------------------------------------------------------------


def test_generated_tokens_are_kept_and_rotation_rolls_the_receivers(
        cluster_helm: Helm, api_client: client.ApiClient, namespace: str) -> None:
    cluster_helm.check("install", RELEASE, str(CHART), "--namespace", namespace,
                       "--values", str(values_file("shadow")))
    installed = secret_data(api_client, namespace)
    assert {"pipeline-token", "api-key", "monitor-api-token", "checksum-salt"} <= set(installed)
    monitor = f"{RELEASE}-monitor"
    before = generations(api_client, namespace)
    assert monitor in before
    del before[monitor]  # it has no pipeline token: no step of the rotation rolls it
    reader = f"{RELEASE}-input-reader"
    receivers = set(before) - {reader}
    assert receivers == {f"{RELEASE}-app-blue", f"{RELEASE}-app-green",
                         f"{RELEASE}-output-writer", f"{RELEASE}-output-writer-shadow"}

    def upgrade(*sets: str) -> set[str]:
        """helm upgrade --reuse-values; the Deployments whose pod template changed."""
        previous = generations(api_client, namespace)
        cluster_helm.check("upgrade", RELEASE, str(CHART), "--namespace", namespace,
                           "--reuse-values", *sets)
        now = generations(api_client, namespace)
        return {name for name in now if now[name] != previous[name]}

    # An upgrade that touches no secret: the generated ones (the monitor's API token too)
    # are looked up and kept.
    assert upgrade("--set", "productionSlot=green") == set()
    assert secret_data(api_client, namespace) == installed
    old, new = installed["pipeline-token"], "rotated-pipeline-token-" + uuid.uuid4().hex
    # 1. the new token as secondary: the receivers roll, the reader (a sender) does not
    assert upgrade("--set-string", f"auth.pipelineTokenSecondary={new}") == receivers
    assert secret_data(api_client, namespace) == {**installed, "pipeline-token-secondary": new}
    # 2. swap: everyone
    assert upgrade("--set-string", f"auth.pipelineToken={new}",
                   "--set-string", f"auth.pipelineTokenSecondary={old}") == set(before)
    assert secret_data(api_client, namespace) == {
        **installed, "pipeline-token": new, "pipeline-token-secondary": old}
    # 3. clear the secondary: the receivers again
    assert upgrade("--set-string", "auth.pipelineTokenSecondary=") == receivers
    assert secret_data(api_client, namespace) == {**installed, "pipeline-token": new}
    # the API key and the salt never moved; the annotation does not hold any value
    for item in client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items:
        annotation = item.spec.template.metadata.annotations["checksum/secret"]
        assert annotation not in secret_data(api_client, namespace).values()


# --- the rollout tool's ServiceAccount ------------------------------------------------------


@pytest.fixture
def other_namespace(api_client: client.ApiClient, namespace: str) -> Iterator[str]:
    """A second namespace with a Secret the rollout tool must not read."""
    core = client.CoreV1Api(api_client)
    name = f"{namespace}-other"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_secret(name, client.V1Secret(
        metadata=client.V1ObjectMeta(name="not-yours"), string_data={"password": "hunter2"}))
    yield name
    core.delete_namespace(name)


def service_account_kubeconfig(api_client: client.ApiClient, kube_cluster: KubeCluster,
                               namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig with a token the API server issues for the ServiceAccount (what `kubectl
    create token` does, and what CI would use)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    token = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        account, namespace, request).status.token
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "rollout",
        "clusters": [{"name": "test", "cluster": {
            "server": kube_cluster.server, "certificate-authority": str(kube_cluster.ca_cert)}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "rollout", "context": {
            "cluster": "test", "user": account, "namespace": namespace}}]}))
    return path


def may(api_client: client.ApiClient, user: str, verb: str, resource: str, namespace: str = "",
        group: str = "", name: str = "", subresource: str = "") -> bool:
    """A SubjectAccessReview: may `user` (a ServiceAccount, with its groups) do this?"""
    namespace_of_user = user.split(":")[2]
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts",
                           f"system:serviceaccounts:{namespace_of_user}",
                           "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, namespace=namespace or None,
            name=name or None, subresource=subresource or None)))
    allowed: bool = client.AuthorizationV1Api(api_client).create_subject_access_review(
        review).status.allowed
    return allowed


def forbidden(call: Any, *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    assert refused.value.status == 403, refused.value
    return refused.value


def test_the_rollout_service_account_deploys_promotes_and_no_more(
        cluster_helm: Helm, helm: Helm, api_client: client.ApiClient,
        kube_cluster: KubeCluster, namespace: str, other_namespace: str,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cluster_helm.check("install", RELEASE, str(CHART), "--namespace", namespace,
                       "--values", str(values_file("rollout-rbac")))
    kubeconfig = service_account_kubeconfig(api_client, kube_cluster, namespace, ROLLOUT,
                                            tmp_path / "rollout-kubeconfig")
    for variable, value in cluster_helm.own_dirs().items():  # helm's caches, not ~/
        monkeypatch.setenv(variable, value)
    release = HelmRelease(RELEASE, namespace, str(CHART), str(helm.binary), str(kubeconfig),
                          timeout_s=60)
    tool_api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        cluster = Cluster(tool_api, namespace, RELEASE)
        journal = Journal(tool_api, namespace, RELEASE)
        whoami = client.AuthenticationV1Api(tool_api).create_self_subject_review(
            client.V1SelfSubjectReview()).status.user_info.username
        assert whoami == f"system:serviceaccount:{namespace}:{ROLLOUT}"

        # status, then deploy to the idle slot: what `agogosml rollout deploy` does
        assert release.values()["rollout"]["rbac"]["create"] is True
        assert cluster.production_slot() == "blue"
        assert not cluster.slot("green").exists
        journal.record("deploy", slot="green", image_tag=TAG_B, model_uri="models:/fraud/2")
        release.upgrade({"app.slots.green.enabled": True, "app.slots.green.image.tag": TAG_B,
                         "app.slots.green.modelUri": "models:/fraud/2"})
        mark_deployment_ready(api_client, namespace, f"{RELEASE}-app-green")  # the kubelet
        green = cluster.slot("green")
        assert green.is_ready
        assert (green.image.endswith(TAG_B), green.model_uri) == (True, "models:/fraud/2")
        # the per-pod gate lists the slot Service's EndpointSlices and GETs each pod's
        # /metrics through the API server's proxy: no pod runs here, so the proxy answers
        # 404 for the pod, after RBAC let the request through (a refusal is 403)
        client.DiscoveryV1Api(tool_api).list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={RELEASE}-app-green")
        with pytest.raises(ApiException) as no_pod:
            client.CoreV1Api(tool_api).connect_get_namespaced_pod_proxy_with_path(
                f"{RELEASE}-app-green-0:8000", namespace, "metrics")
        assert no_pod.value.status == 404, no_pod.value
        # promote, then retire the old slot (helm deletes its Deployment, Service, HPA, PDB)
        release.upgrade({"productionSlot": "green"})
        assert cluster.production_slot() == "green"
        journal.record("promoted", production="green")
        release.upgrade({"app.slots.blue.enabled": False})
        assert not cluster.slot("blue").exists
        assert [entry["step"] for entry in journal.entries()] == ["deploy", "promoted"]
        # what a failed component rollout does: helm status, then rollback a revision
        as_tool = helm.on_cluster(kubeconfig, tmp_path / "helm")
        status = yaml.safe_load(as_tool.check("status", RELEASE, "--namespace", namespace,
                                              "--output", "json"))
        assert status["version"] == 4
        as_tool.check("rollback", RELEASE, "3", "--namespace", namespace)
        assert cluster.slot("blue").exists  # revision 3 had both slots

        # ...and no more, tried for real
        core = client.CoreV1Api(tool_api)
        forbidden(core.read_namespaced_secret, "not-yours", other_namespace)
        forbidden(core.list_secret_for_all_namespaces)
        forbidden(core.delete_namespace, namespace)
        forbidden(client.AppsV1Api(tool_api).list_namespaced_deployment, other_namespace)
        rbac = client.RbacAuthorizationV1Api(tool_api)
        grown = rbac.read_namespaced_role(ROLLOUT, namespace)
        grown.rules.append(client.V1PolicyRule(api_groups=[""], resources=["pods/exec"],
                                               verbs=["create"]))
        refused = forbidden(rbac.replace_namespaced_role, ROLLOUT, namespace, grown)
        assert "attempting to grant RBAC permissions not currently held" in refused.body
        forbidden(rbac.create_namespaced_role_binding, namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="more"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io",
                                      kind="ClusterRole", name="admin"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=ROLLOUT,
                                           namespace=namespace)]))
    finally:
        tool_api.close()

    user = f"system:serviceaccount:{namespace}:{ROLLOUT}"
    denied = [
        ("get", "secrets", other_namespace, "", "", ""),
        ("list", "secrets", "", "", "", ""),
        ("delete", "namespaces", "", "", namespace, ""),
        ("create", "roles", namespace, "rbac.authorization.k8s.io", "", ""),
        ("create", "rolebindings", namespace, "rbac.authorization.k8s.io", "", ""),
        ("update", "roles", namespace, "rbac.authorization.k8s.io", "someone-elses", ""),
        ("escalate", "roles", namespace, "rbac.authorization.k8s.io", ROLLOUT, ""),
        ("bind", "clusterroles", "", "rbac.authorization.k8s.io", "admin", ""),
        ("create", "pods", namespace, "", "", ""),
        ("list", "pods", namespace, "", "", ""),
        ("get", "pods", namespace, "", "x", ""),
        ("create", "pods", namespace, "", "x", "proxy"),  # POST through the proxy
        ("list", "deployments", namespace, "apps", "", ""),
        ("create", "pods", namespace, "", "x", "exec"),
        ("get", "pods", namespace, "", "x", "log"),
        ("create", "serviceaccounts", namespace, "", ROLLOUT, "token"),
        ("watch", "deployments", namespace, "apps", "", ""),
        ("deletecollection", "deployments", namespace, "apps", "", ""),
        ("create", "jobs", namespace, "batch", "", ""),
        ("create", "cronjobs", namespace, "batch", "", ""),  # retraining is off
        ("patch", "deployments", other_namespace, "apps", "", ""),
        ("get", "nodes", "", "", "", ""),
        ("impersonate", "users", "", "", "", ""),
        ("create", "clusterrolebindings", "", "rbac.authorization.k8s.io", "", ""),
    ]
    for verb, resource, where, group, name, subresource in denied:
        assert not may(api_client, user, verb, resource, where, group, name, subresource), (
            verb, resource, where, name, subresource)
    # What helm's release records force on it, said plainly in values.yaml: every Secret
    # of its own namespace (RBAC cannot tell helm.sh/release.v1 Secrets apart).
    assert may(api_client, user, "list", "secrets", namespace)
    assert may(api_client, user, "patch", "horizontalpodautoscalers", namespace, "autoscaling")


# --- NetworkPolicy ---------------------------------------------------------------------------


def test_network_policies_are_stored_as_rendered(helm: Helm, api_client: client.ApiClient,
                                                 namespace: str) -> None:
    rendered = helm.template(["network-peers"], namespace=namespace)
    sent = rendered.of_kind("NetworkPolicy")
    assert {name_of(item) for item in sent} == {
        f"{RELEASE}-{name}" for name in ("baseline", "input-reader", "app", "output-writers",
                                         "test", "monitor")}
    apply_manifests(api_client, sent, namespace, dry_run=False)
    stored = {item.metadata.name: api_client.sanitize_for_serialization(item.spec)
              for item in client.NetworkingV1Api(api_client)
              .list_namespaced_network_policy(namespace).items}
    assert stored == {name_of(item): item["spec"] for item in sent}
