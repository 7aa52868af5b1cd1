"""The rollout steps: status, deploy to the idle slot, promote, watch, roll back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from agogosml.errors import AgogosmlError
from agogosml.rollout.cluster import Cluster, Journal, other_slot
from agogosml.rollout.gate import GateLimits, Scrape, Verdict, evaluate
from agogosml.rollout.helm import HelmRelease

log = logging.getLogger(__name__)


class RolloutError(AgogosmlError):
    """A rollout step failed; production was left on (or returned to) a healthy slot."""


ScrapeForSlot = Callable[[str], Scrape]


@dataclass(frozen=True)
class WatchPolicy:
    gate_window_s: float = 30.0
    watch_s: float = 300.0
    ready_timeout_s: float = 300.0


class Rollout:
    def __init__(self, release: HelmRelease, cluster: Cluster, journal: Journal,
                 scrape_for: ScrapeForSlot, limits: GateLimits, policy: WatchPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.release = release
        self.cluster = cluster
        self.journal = journal
        self.scrape_for = scrape_for
        self.limits = limits
        self.policy = policy
        self.sleep = sleep

    def status(self) -> dict[str, Any]:
        production = self.cluster.production_slot()
        return {
            "production": production,
            "idle": other_slot(production),
            "slots": {slot: asdict(self.cluster.slot(slot)) for slot in ("blue", "green")},
            "journal": self.journal.entries()[-10:],
        }

    def deploy(self, image_tag: str | None, model_uri: str | None) -> str:
        """Put the new version on the idle slot and wait until it is ready; return the slot."""
        idle = other_slot(self.cluster.production_slot())
        changes: dict[str, str | bool] = {f"app.slots.{idle}.enabled": True}
        if image_tag:
            changes[f"app.slots.{idle}.image.tag"] = image_tag
        if model_uri:
            changes[f"app.slots.{idle}.modelUri"] = model_uri
        self.journal.record("deploy", slot=idle, image_tag=image_tag, model_uri=model_uri)
        self.release.upgrade(changes)
        state = self.cluster.wait_ready(idle, self.policy.ready_timeout_s)
        if not state.is_ready:
            self.journal.record("deploy-failed", slot=idle, ready=state.ready,
                                desired=state.desired)
            raise RolloutError(f"slot {idle} not ready after {self.policy.ready_timeout_s}s "
                               f"({state.ready}/{state.desired} replicas)")
        self.journal.record("ready", slot=idle, replicas=state.ready)
        return idle

    def gate(self, slot: str) -> Verdict:
        verdict = evaluate(self.scrape_for(slot), self.limits, self.policy.gate_window_s,
                           self.sleep)
        self.journal.record("gate-passed" if verdict.passed else "gate-failed", slot=slot,
                            reasons=verdict.reasons, error_rate=verdict.error_rate,
                            p99_latency_s=verdict.p99_latency_s,
                            shadow_agreement=verdict.shadow_agreement)
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
