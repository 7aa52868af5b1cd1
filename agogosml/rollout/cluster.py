"""What the rollout tool reads from Kubernetes: slot Deployments, the production Service,
and the rollout journal kept in a ConfigMap."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

SLOT_LABEL = "agogosml.io/slot"
SLOTS = ("blue", "green")
CONFLICT_RETRIES = 10


def other_slot(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


@dataclass(frozen=True)
class DeploymentState:
    """A Deployment's rollout: ready counts only pods known to run its current spec."""

    name: str
    exists: bool
    desired: int = 0
    ready: int = 0
    image: str = ""

    @property
    def is_ready(self) -> bool:
        return self.exists and self.desired > 0 and self.ready >= self.desired


@dataclass(frozen=True)
class SlotState:
    slot: str
    exists: bool
    desired: int = 0
    ready: int = 0
    image: str = ""
    model_uri: str = ""

    @property
    def is_ready(self) -> bool:
        return self.exists and self.desired > 0 and self.ready >= self.desired


COMPONENTS = ("input-reader", "output-writer", "output-writer-shadow")
"""The chart's Deployments besides the app slots, all on the image tag `image.tag`."""


def component_name(fullname: str, suffix: str) -> str:
    """`<fullname>-<suffix>` within 63 characters, as the chart's agogosml.componentName
    shortens it."""
    return f"{fullname[:62 - len(suffix)].rstrip('-')}-{suffix}"


def _ready_replicas(deployment: Any) -> int:
    status = deployment.status
    generation_seen = (status.observed_generation or 0) >= \
        (deployment.metadata.generation or 0)
    if not generation_seen:
        return 0
    # Only ready pods known to run the current spec count: during a rolling update the
    # old pods are ready too (`kubectl rollout status` waits for them to go as well).
    updated = status.updated_replicas or 0
    old = max(0, (status.replicas or 0) - updated)
    return max(0, min((status.ready_replicas or 0) - old, updated))


class Cluster:
    def __init__(self, api: client.ApiClient, namespace: str, fullname: str) -> None:
        self.api = api
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.fullname = fullname

    def name(self, suffix: str) -> str:
        return component_name(self.fullname, suffix)

    def deployment_name(self, slot: str) -> str:
        return self.name(f"app-{slot}")

    def service_name(self, slot: str) -> str:
        """The slot's own Service (its EndpointSlices list exactly the slot's pods)."""
        return self.name(f"app-{slot}")

    def _read(self, name: str) -> Any:
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def deployment(self, name: str) -> DeploymentState:
        deployment = self._read(name)
        if deployment is None:
            return DeploymentState(name, exists=False)
        return DeploymentState(name, True, deployment.spec.replicas or 0,
                               _ready_replicas(deployment),
                               deployment.spec.template.spec.containers[0].image or "")

    def slot(self, slot: str) -> SlotState:
        deployment = self._read(self.deployment_name(slot))
        if deployment is None:
            return SlotState(slot, exists=False)
        container = deployment.spec.template.spec.containers[0]
        env = {item.name: item.value for item in container.env or [] if item.value}
        return SlotState(slot, exists=True, desired=deployment.spec.replicas or 0,
                         ready=_ready_replicas(deployment), image=container.image or "",
                         model_uri=env.get("AGOGOSML_APP_MODEL_URI", ""))

    def components(self) -> list[DeploymentState]:
        """The reader and writer Deployments the release has (the shadow writer only
        while shadow scoring is on)."""
        states = [self.deployment(self.name(component)) for component in COMPONENTS]
        return [state for state in states if state.exists]

    def production_slot(self) -> str:
        service = self.core.read_namespaced_service(self.name("app"), self.namespace)
        slot: str = service.spec.selector[SLOT_LABEL]
        return slot

    def wait_ready(self, slot: str, timeout_s: float, poll_s: float = 1.0) -> SlotState:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.slot(slot)
            if state.is_ready or time.monotonic() > deadline:
                return state
            time.sleep(poll_s)  # polling the Deployment's status until it is ready

    def wait_components_ready(self, timeout_s: float,
                              poll_s: float = 1.0) -> list[DeploymentState]:
        deadline = time.monotonic() + timeout_s
        while True:
            states = self.components()
            if all(state.is_ready for state in states) or time.monotonic() > deadline:
                return states
            time.sleep(poll_s)  # polling the Deployments' status until they are ready


class Journal:
    """Every rollout step, kept in a ConfigMap so `status` shows it to anyone."""

    def __init__(self, api: client.ApiClient, namespace: str, release: str,
                 keep: int = 50) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.name = f"{release}-rollout"
        self.keep = keep

    def _read(self) -> tuple[list[dict[str, Any]], str | None]:
        """The entries and the ConfigMap's resourceVersion (None while it does not exist)."""
        try:
            config_map = self.core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return [], None
            raise
        entries: list[dict[str, Any]] = json.loads((config_map.data or {}).get("journal", "[]"))
        return entries, config_map.metadata.resource_version

    def entries(self) -> list[dict[str, Any]]:
        return self._read()[0]

    def record(self, step: str, **details: Any) -> None:
        """Append a step. Two tools writing at once cannot overwrite each other: the write
        names the version it read, and a conflict (409) reads again and retries."""
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "step": step,
                 **details}
        for _ in range(CONFLICT_RETRIES):
            entries, version = self._read()
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=self.name, resource_version=version,
                    labels={"app.kubernetes.io/managed-by": "agogosml-rollout"}),
                data={"journal": json.dumps([*entries, entry][-self.keep:])})
            try:
                if version is None:
                    self.core.create_namespaced_config_map(self.namespace, body)
                else:
                    self.core.replace_namespaced_config_map(self.name, self.namespace, body)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        raise ApiException(status=409, reason=f"journal {self.name} kept changing")
