"""From a rule that wants to fire to a recorded firing: claim the cool-down, run the action
in the background, record the outcome and the evidence in the event store, count it.

Actions run as tasks so a long one (a retrain answers when training ends) delays neither
the evaluator's next tick nor Alertmanager's answer. The firing is recorded when the action
has finished; `idle()` waits for the running ones, `aclose()` for shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from agogosml.monitor.store.base import AsyncEventStore, Firing, Json
from agogosml.monitor.triggers.actions import Action, FiringContext, run_action
from agogosml.monitor.triggers.cooldown import CoolDowns
from agogosml.monitor.triggers.metrics import TriggerMetrics, outcome_class

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, actions: Mapping[str, Action], cool_downs: CoolDowns,
                 store: AsyncEventStore, metrics: TriggerMetrics) -> None:
        self.actions = dict(actions)
        self.cool_downs = cool_downs
        self.store = store
        self.metrics = metrics
        self._running: set[asyncio.Task[Firing]] = set()

    async def restore(self, now: float) -> None:
        """Reads the firings within the longest cool-down back into the cool-downs."""
        now_ms = int(now * 1000)
        since_ms = now_ms - int(self.cool_downs.longest_s() * 1000)
        self.cool_downs.restore(await self.store.firings(since_ms, now_ms + 1))

    def fire(self, rule: str, now: float, evidence: Json,
             summary: str) -> asyncio.Task[Firing] | None:
        """Starts the rule's action unless the rule is cooling down; the task's result is
        the recorded firing. Must be called on the event loop."""
        if not self.cool_downs.claim(rule, now):
            return None
        context = FiringContext(rule, int(now * 1000), evidence, summary)
        task = asyncio.get_running_loop().create_task(self._run(self.actions[rule], context))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _run(self, action: Action, context: FiringContext) -> Firing:
        outcome = await run_action(action, context)
        firing = Firing(context.rule, context.fired_at_ms, context.evidence, action.kind,
                        outcome[:500])
        self.metrics.fired(context.rule, action.kind, outcome)
        level = logging.INFO if outcome_class(outcome) == "ok" else logging.WARNING
        log.log(level, "trigger action done", extra={"rule": context.rule, "action": action.kind,
                                                "outcome": firing.outcome})
        try:
            record_id = await self.store.record_firing(firing)
        except Exception:  # the action happened: losing its record must not hide that
            log.error("firing not recorded", exc_info=True,
                      extra={"rule": context.rule, "action": action.kind})
            return firing
        return Firing(firing.rule, firing.fired_at_ms, firing.evidence, firing.action,
                      firing.outcome, record_id)

    async def idle(self) -> None:
        """Until every action started so far has finished and been recorded."""
        while self._running:
            await asyncio.gather(*list(self._running))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Gives running actions `timeout_s` to finish, then cancels the rest."""
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
