"""The rollout steps: status, deploy to the idle slot (and the reader and writer images),
promote, watch, roll back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from agogosml.errors import AgogosmlError
from agogosml.rollout.cluster import Cluster, DeploymentState, Journal, other_slot
from agogosml.rollout.health import HealthLimits, HealthVerdict, MetricsSource, evaluate
from agogosml.rollout.helm import HelmRelease
from agogosml.rollout.models import pin_model_uri

log = logging.getLogger(__name__)


class RolloutError(AgogosmlError):
    """A rollout step failed; production was left on (or returned to) a healthy slot."""


SourceForSlot = Callable[[str], MetricsSource]


@dataclass(frozen=True)
class WatchPolicy:
    gate_window_s: float = 30.0
    watch_s: float = 300.0
    ready_timeout_s: float = 300.0


class Rollout:
    def __init__(self, release: HelmRelease, cluster: Cluster, journal: Journal,
                 source_for: SourceForSlot, limits: HealthLimits, policy: WatchPolicy,
                 sleep: Callable[[float], None] = time.sleep,
                 mlflow_tracking_uri: str | None = None) -> None:
        self.release = release
        self.cluster = cluster
        self.journal = journal
        self.source_for = source_for
        self.limits = limits
        self.policy = policy
        self.sleep = sleep
        self.mlflow_tracking_uri = mlflow_tracking_uri

    def status(self) -> dict[str, Any]:
        production = self.cluster.production_slot()
        return {
            "production": production,
            "idle": other_slot(production),
            "slots": {slot: asdict(self.cluster.slot(slot)) for slot in ("blue", "green")},
            "journal": self.journal.entries()[-10:],
        }

    def deploy(self, image_tag: str | None, model_uri: str | None) -> str:
        """Put the new version on the idle slot and wait until it is ready; then, with an
        image tag, roll the reader and writer to it (see deploy_components). What is not
        given is taken from the production slot: an image-only deploy serves
        production's model, a model-only deploy runs production's image (not whatever
        the idle slot ran before). A model alias is resolved to the version it names
        now, and the slot pinned to that. Returns the slot."""
        pinned = pin_model_uri(model_uri, self.mlflow_tracking_uri) if model_uri else None
        production = self.cluster.production_slot()
        idle = other_slot(production)
        live = self.release.values().get("app", {}).get("slots", {}).get(production, {})
        slot_tag = image_tag or (live.get("image") or {}).get("tag") or None
        pinned = pinned or live.get("modelUri") or None
        changes: dict[str, str | bool] = {f"app.slots.{idle}.enabled": True}
        if slot_tag:
            changes[f"app.slots.{idle}.image.tag"] = slot_tag
        if pinned:
            changes[f"app.slots.{idle}.modelUri"] = pinned
        self.journal.record("deploy", slot=idle, image_tag=slot_tag, model_uri=pinned,
                            model_uri_requested=model_uri)
        self.release.upgrade(changes)
        state = self.cluster.wait_ready(idle, self.policy.ready_timeout_s)
        if not state.is_ready:
            self.journal.record("deploy-failed", slot=idle, ready=state.ready,
                                desired=state.desired)
            raise RolloutError(f"slot {idle} not ready after {self.policy.ready_timeout_s}s "
                               f"({state.ready}/{state.desired} replicas)")
        self.journal.record("ready", slot=idle, replicas=state.ready)
        if image_tag:
            self.deploy_components(image_tag)
        return idle

    def deploy_components(self, image_tag: str) -> None:
        """Roll the reader and writer Deployments to `image_tag` (the chart's `image.tag`),
        gated by their own health: every one ready on its new spec within the ready
        timeout, or the release goes back to the revision before (helm rollback) and the
        deploy fails. They are not blue/green: they roll in place, and the rollback
        restores their previous image."""
        previous = self.release.values().get("image", {}).get("tag")
        if previous == image_tag:
            return
        revision = self.release.revision()
        self.journal.record("deploy-components", image_tag=image_tag,
                            previous_image_tag=previous, revision=revision)
        self.release.upgrade({"image.tag": image_tag})
        states = self.cluster.wait_components_ready(self.policy.ready_timeout_s)
        if all(state.is_ready for state in states):
            self.journal.record("components-ready", ready=_replicas(states))
            return
        self.journal.record("components-failed", ready=_replicas(states))
        self.release.rollback(revision)
        after = self.cluster.wait_components_ready(self.policy.ready_timeout_s)
        recovered = all(state.is_ready for state in after)
        self.journal.record("components-rolled-back", revision=revision,
                            image_tag=previous, ready=_replicas(after))
        late = ", ".join(f"{state.name} ({state.ready}/{state.desired})"
                         for state in states if not state.is_ready)
        raise RolloutError(
            f"{late} not ready on image tag {image_tag} after "
            f"{self.policy.ready_timeout_s}s; rolled back to revision {revision} "
            f"(image.tag {previous})" +
            ("" if recovered else "; still not ready after the rollback: "
             + ", ".join(f"{s.name} ({s.ready}/{s.desired})" for s in after
                         if not s.is_ready)))

    def gate(self, slot: str) -> HealthVerdict:
        verdict = evaluate(self.source_for(slot), self.limits, self.policy.gate_window_s,
                           self.sleep)
        self.journal.record("gate-passed" if verdict.passed else "gate-failed", slot=slot,
                            reasons=verdict.reasons, requests=verdict.requests,
                            pods=verdict.pods, error_rate=verdict.error_rate,
                            p99_latency_s=verdict.p99_latency_s,
                            shadow_agreement=verdict.shadow_agreement, notes=verdict.notes)
        return verdict

    def switch(self, slot: str, step: str) -> None:
        self.release.upgrade({"productionSlot": slot})
        self.journal.record(step, production=slot)

    def promote(self, watch: bool = True) -> str:
        """Gate the idle slot, switch production to it, then watch it and switch back
        automatically if the gate fails within the watch period."""
        previous = self.cluster.production_slot()
        candidate = other_slot(previous)
        if not self.cluster.slot(candidate).is_ready:
            raise RolloutError(f"slot {candidate} is not deployed and ready; deploy first")
        verdict = self.gate(candidate)
        if not verdict.passed:
            raise RolloutError(f"gate failed for {candidate}: {'; '.join(verdict.reasons)}")
        self.switch(candidate, "promoted")
        if watch:
            self._watch(candidate, previous)
        return candidate

    def rollback(self) -> str:
        """Send production back to the other slot (the previous colour), if it is ready."""
        current = self.cluster.production_slot()
        previous = other_slot(current)
        if not self.cluster.slot(previous).is_ready:
            raise RolloutError(f"slot {previous} is not ready; nothing to roll back to")
        self.switch(previous, "rolled-back")
        return previous

    def _watch(self, slot: str, previous: str) -> None:
        deadline = time.monotonic() + self.policy.watch_s
        while time.monotonic() < deadline:
            verdict = self.gate(slot)
            if not verdict.passed:
                self.switch(previous, "automatic-rollback")
                raise RolloutError(f"{slot} failed its gate after the switch "
                                   f"({'; '.join(verdict.reasons)}); production is back "
                                   f"on {previous}")
        self.journal.record("watch-passed", production=slot)


def _replicas(states: list[DeploymentState]) -> dict[str, str]:
    return {state.name: f"{state.ready}/{state.desired}" for state in states}
