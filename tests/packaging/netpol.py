"""What a set of NetworkPolicies allows, decided as the Kubernetes NetworkPolicy API
defines it (networking.k8s.io/v1), for the chart tests.

No CNI runs in the tests, so this is the reference the rendered policies are checked
against: a connection from one endpoint to another on a port is allowed when the source's
egress and the destination's ingress both allow it. A side is open while no policy of its
namespace selects the pod for that direction; once one does, the union of the rules of
every policy that selects it decides. Addresses outside the cluster have no policies and
match only ipBlock peers; pods match podSelector / namespaceSelector peers only (not
ipBlock: pod traffic is usually not matched by ipBlock, and the chart never relies on it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports

    def __post_init__(self) -> None:
        if not self.namespace_labels:  # what the API server sets on every namespace
            object.__setattr__(self, "namespace_labels",
                               {"kubernetes.io/metadata.name": self.namespace})


@dataclass(frozen=True)
class Address:
    """An address outside the cluster (a managed Kafka, Event Hubs, an object store)."""

    ip: str

    @property
    def name(self) -> str:
        return self.ip


Endpoint = Pod | Address


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; an empty one selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        matched = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator)
        if matched is None:
            raise ValueError(f"unknown selector operator {operator}")
        if not matched:
            return False
    return True


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if not isinstance(endpoint, Address):
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except") or [])
    if not isinstance(endpoint, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], endpoint.namespace_labels):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], endpoint.labels)


def port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str,
                 target: Endpoint) -> bool:
    """A rule's ports against a destination port; no ports: every port."""
    entries = list(ports or [])
    if not entries:
        return True
    for entry in entries:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            wanted = target.ports.get(wanted) if isinstance(target, Pod) else None
            if wanted is None:
                continue
        if wanted <= port <= int(entry.get("endPort", wanted)):
            return True
    return False


def policy_types(policy: Manifest) -> list[str]:
    spec = policy["spec"]
    declared: list[str] | None = spec.get("policyTypes")
    if declared:
        return declared
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def selecting(policies: Iterable[Manifest], pod: Pod, direction: str) -> list[Manifest]:
    return [policy for policy in policies
            if policy["metadata"].get("namespace", pod.namespace) == pod.namespace
            and direction in policy_types(policy)
            and selects(policy["spec"]["podSelector"], pod.labels)]


def side_allows(policies: Iterable[Manifest], pod: Pod, direction: str, other: Endpoint,
                port: int, protocol: str, target: Endpoint) -> bool:
    chosen = selecting(policies, pod, direction)
    if not chosen:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in chosen:
        namespace = policy["metadata"].get("namespace", pod.namespace)
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(peer, namespace, other) for peer in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol, target):
                return True
    return False


def allowed(policies: list[Manifest], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `destination` on `port`."""
    if isinstance(source, Pod) and not side_allows(policies, source, "Egress", destination,
                                                   port, protocol, destination):
        return False
    return not isinstance(destination, Pod) or side_allows(
        policies, destination, "Ingress", source, port, protocol, destination)


def pods_of(rendered_objects: Iterable[Manifest], namespace: str) -> list[Pod]:
    """The pods the rendered Deployments, CronJobs and bare Pods would run (one each)."""
    pods = []
    for item in rendered_objects:
        kind = item["kind"]
        if kind == "Deployment":
            template = item["spec"]["template"]
        elif kind == "CronJob":
            template = item["spec"]["jobTemplate"]["spec"]["template"]
        elif kind == "Pod":
            template = item
        else:
            continue
        ports = {port["name"]: port["containerPort"]
                 for container in template["spec"]["containers"]
                 for port in container.get("ports") or [] if "name" in port}
        pods.append(Pod(item["metadata"]["name"], namespace,
                        dict(template["metadata"]["labels"]), ports=ports))
    return pods
