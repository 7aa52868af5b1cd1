"""Installing CustomResourceDefinitions from tests/k8s/crds/ on the test API server."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s.kube import apply_manifests
from tests.packaging.helm import Manifest

CRDS = Path(__file__).parents[1] / "k8s" / "crds"
MONITORING_CRDS = tuple(sorted(CRDS.glob("*.yaml")))
"""Stand-ins for the Prometheus Operator's CRDs (spec not validated)."""
KEDA_CRDS = tuple(sorted((CRDS / "keda").glob("*.yaml")))
"""KEDA's own CRDs, unmodified (tests/k8s/crds/keda/README.md)."""


def install_crds(api_client: client.ApiClient, paths: Iterable[Path],
                 timeout_s: float = 30) -> set[str]:
    """Install the CRDs (cluster-wide, idempotent) and wait until the API server serves
    their kinds; return those kinds."""
    crds: list[Manifest] = [yaml.safe_load(path.read_text()) for path in paths]
    apply_manifests(api_client, crds, "default", dry_run=False)
    extensions = client.ApiextensionsV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    for crd in crds:
        while not _established(extensions, crd["metadata"]["name"]):
            assert time.monotonic() < deadline, f"CRD {crd['metadata']['name']} not established"
            time.sleep(0.1)  # polling the CRD's Established condition
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in (item["name"] for item in crd["spec"]["versions"] if item["served"]):
            while not _served(api_client, group, version, kind):
                assert time.monotonic() < deadline, f"{group}/{version} {kind} not served"
                time.sleep(0.1)  # polling discovery until the new kind is listed
    return {crd["spec"]["names"]["kind"] for crd in crds}


def _established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = extensions.read_custom_resource_definition(name).status.conditions or []
    return any(item.type == "Established" and item.status == "True" for item in conditions)


def _served(api_client: client.ApiClient, group: str, version: str, kind: str) -> bool:
    try:
        listing = client.CustomObjectsApi(api_client).get_api_resources(group, version)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return kind in {resource.kind for resource in listing.resources}
