"""A slot's pods, found through its Service's EndpointSlices, and two ways to read each
pod's /metrics:

- `proxy` (the default out of the cluster, e.g. from CI): through the API server's pod
  proxy, `GET /api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/metrics`, so it works
  wherever the kubeconfig works. The API server connects to the pod's IP: a
  NetworkPolicy in front of the app must admit it on the app's port. RBAC: `get` on
  `pods/proxy` (a GET through the proxy needs no more; POSTs would need `create`).
- `direct` (the default inside the cluster, e.g. a Job): `http://<address>:<port>/metrics`.

Either way every endpoint is read on its own, so the gate compares each pod with itself.
RBAC for the discovery: `list` on `endpointslices` (discovery.k8s.io).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import httpx
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from agogosml.rollout.health import Fetch, MetricsUnreadable, PodEndpoint, first_line, parse

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
READ_TIMEOUT_S = 5.0


def slot_endpoints(api: client.ApiClient, namespace: str, service: str,
                   port_name: str = "http") -> Callable[[], list[PodEndpoint]]:
    """Lists the endpoints of `service` (every slice of it), on the port named
    `port_name` (or a slice's only port). An endpoint in two slices (while the
    EndpointSlice controller moves it) is listed once."""
    discovery = client.DiscoveryV1Api(api)

    def endpoints() -> list[PodEndpoint]:
        try:
            slices = discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=f"{SERVICE_NAME_LABEL}={service}").items
        except ApiException as error:
            raise MetricsUnreadable(f"cannot list the EndpointSlices of {service}: "
                                    f"{error.status} {error.reason}") from error
        found: dict[str, PodEndpoint] = {}
        for endpoint_slice in slices:
            port = _port(endpoint_slice.ports or [], port_name)
            if port is None or endpoint_slice.address_type not in ("IPv4", "IPv6"):
                continue
            for endpoint in endpoint_slice.endpoints or []:
                pod_endpoint = _endpoint(endpoint, port)
                if pod_endpoint is not None:
                    found.setdefault(pod_endpoint.key, pod_endpoint)
        return sorted(found.values(), key=lambda endpoint: endpoint.key)

    return endpoints


def _port(ports: list[Any], name: str) -> int | None:
    named = [port.port for port in ports if port.name == name and port.port]
    if named:
        return int(named[0])
    if len(ports) == 1 and ports[0].port:
        return int(ports[0].port)
    return None


def _endpoint(endpoint: Any, port: int) -> PodEndpoint | None:
    if not endpoint.addresses:
        return None
    conditions = endpoint.conditions
    target = endpoint.target_ref
    pod = target.name if target is not None and target.kind == "Pod" else None
    # The API's rule: a ready condition that is not set means ready.
    ready = conditions is None or conditions.ready is None or bool(conditions.ready)
    terminating = bool(conditions is not None and conditions.terminating)
    return PodEndpoint(endpoint.addresses[0], port, pod, ready, terminating)


def metrics_url(endpoint: PodEndpoint, path: str = "/metrics") -> str:
    host = endpoint.address
    if ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"http://{host}:{endpoint.port}{path}"


def direct_fetch(timeout_s: float = READ_TIMEOUT_S) -> Fetch:
    def fetch(endpoint: PodEndpoint) -> str:
        try:
            response = httpx.get(metrics_url(endpoint), timeout=timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise MetricsUnreadable(first_line(error)) from error
        return response.text
    return fetch


def proxy_path(namespace: str, endpoint: PodEndpoint, path: str = "metrics") -> str:
    """The API server's path that proxies to the pod's port (what kubectl get --raw
    would fetch)."""
    if endpoint.pod is None:
        raise MetricsUnreadable(f"endpoint {endpoint.key} names no pod, so the API "
                                "server cannot proxy to it (read it with --metrics-via "
                                "direct from inside the cluster)")
    return f"/api/v1/namespaces/{namespace}/pods/{endpoint.pod}:{endpoint.port}/proxy/{path}"


def proxy_fetch(api: client.ApiClient, namespace: str,
                timeout_s: float = READ_TIMEOUT_S) -> Fetch:
    core = client.CoreV1Api(api)

    def fetch(endpoint: PodEndpoint) -> str:
        proxy_path(namespace, endpoint)  # refuses an endpoint without a pod
        try:
            response = core.connect_get_namespaced_pod_proxy_with_path(
                f"{endpoint.pod}:{endpoint.port}", namespace, "metrics",
                _preload_content=False, _request_timeout=timeout_s)
            body: bytes = response.data
        except ApiException as error:
            raise MetricsUnreadable(f"through the API server: {error.status} "
                                    f"{error.reason}") from error
        except urllib3.exceptions.HTTPError as error:
            raise MetricsUnreadable(f"through the API server: {first_line(error)}") \
                from error
        return body.decode("utf-8", errors="replace")
    return fetch


def readability(endpoints: list[PodEndpoint], fetch: Fetch) -> list[dict[str, object]]:
    """Each endpoint, and whether its metrics can be read from here (the error if not):
    what `agogosml rollout pods` shows before the gate depends on it."""
    report: list[dict[str, object]] = []
    for endpoint in endpoints:
        entry: dict[str, object] = {"pod": endpoint.key, "address": endpoint.address,
                                    "port": endpoint.port, "ready": endpoint.serving}
        try:
            parse(fetch(endpoint))
            entry["metrics"] = "readable"
        except MetricsUnreadable as error:
            entry["metrics"] = f"unreadable: {error}"
        report.append(entry)
    return report
