"""A real Kubernetes API server (etcd + kube-apiserver, no kubelet) for the session, as a
pytest plugin (tests/conftest.py loads it), so that the tests of any package can use it.

Fixtures: `kube_cluster` (the running server, see tests/k8s/kube.py), `kubeconfig` (path
to an admin kubeconfig file), `api_client` (a kubernetes.client.ApiClient) and
`namespace` (a fresh namespace per test, with its `default` ServiceAccount).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.k8s.kube import KUBE_FIXTURES, KubeBinaries, KubeCluster, fetch_binaries, run_cluster

_BINARIES = pytest.StashKey[KubeBinaries | BaseException]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build or find the binaries once, before any test's timeout starts ticking: the
    first build on a new machine takes minutes (`make kube` does it ahead of pytest)."""
    if any(KUBE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        try:
            config.stash[_BINARIES] = fetch_binaries()
        except Exception as exc:  # reported by the fixture, to the tests that need it
            config.stash[_BINARIES] = exc


@pytest.fixture(scope="session")
def kube_cluster(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    binaries = request.config.stash.get(_BINARIES, None) or fetch_binaries()
    if isinstance(binaries, BaseException):
        raise RuntimeError("could not get etcd and kube-apiserver") from binaries
    with run_cluster(tmp_path_factory.mktemp("kube"), binaries) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: KubeCluster) -> Path:
    return kube_cluster.kubeconfig


@pytest.fixture(scope="session")
def api_client(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    api = kube_cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace of the test's own. Its `default` ServiceAccount is made here, as
    kube-controller-manager would, so that Pods pass ServiceAccount admission."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_service_account(
        name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default")))
    yield name
    # With no namespace controller it stays Terminating; nothing else looks at it.
    core.delete_namespace(name)
