"""Metric rules over ticks: for-durations, cool-downs, one firing per cool-down however
often or concurrently evaluated, every firing recorded with its evidence, cool-downs
surviving a restart."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agogosml.monitor.store.base import AsyncEventStore, Firing
from agogosml.monitor.triggers import Triggers, TriggerSecrets
from agogosml.monitor.triggers.cooldown import CoolDowns
from agogosml.monitor.triggers.rules import RuleSet
from tests.monitor.triggers.conftest import START, Clock, metric_rule, rules

Start = Callable[..., Awaitable[Triggers]]


@pytest.fixture
async def start(event_store: AsyncEventStore, clock: Clock) -> AsyncIterator[Start]:
    started: list[Triggers] = []

    async def make(rule_set: RuleSet, registry: CollectorRegistry | None = None) -> Triggers:
        triggers = Triggers(rule_set, event_store, registry or CollectorRegistry(),
                            TriggerSecrets(), clock=clock)
        await triggers.start()
        started.append(triggers)
        return triggers

    yield make
    for triggers in started:
        await triggers.aclose()


async def tick(triggers: Triggers, snapshot: dict[str, float]) -> list[Firing]:
    return list(await asyncio.gather(*await triggers.evaluate(snapshot)))


async def test_a_condition_fires_only_after_holding_for_its_duration(start: Start,
                                                                     clock: Clock) -> None:
    triggers = await start(rules(metric_rule(aggregate="last", **{"for": 60})))
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.5}) == []
    clock.advance(30)
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.5}) == []
    clock.advance(30)
    [firing] = await tick(triggers, {"drift_psi{feature=amount}": 0.5})
    assert firing.rule == "psi-high"
    assert firing.evidence["holding_since_ms"] == int(START * 1000)


async def test_a_break_in_the_condition_restarts_its_duration(start: Start,
                                                              clock: Clock) -> None:
    triggers = await start(rules(metric_rule(aggregate="last", **{"for": 60})))
    await tick(triggers, {"drift_psi{feature=amount}": 0.5})
    clock.advance(40)
    await tick(triggers, {"drift_psi{feature=amount}": 0.1})
    clock.advance(40)
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.5}) == []
    clock.advance(59)
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.5}) == []
    clock.advance(1)
    assert len(await tick(triggers, {"drift_psi{feature=amount}": 0.5})) == 1


async def test_a_rule_fires_once_per_cool_down_while_its_condition_holds(
        start: Start, clock: Clock) -> None:
    triggers = await start(rules(metric_rule(cool_down=600, aggregate="last")))
    fired_at = []
    for _ in range(25):  # a tick a minute for 25 minutes, drifting all along
        if await tick(triggers, {"drift_psi{feature=amount}": 0.9}):
            fired_at.append(clock.now - START)
        clock.advance(60)
    assert fired_at == [0, 600, 1200]


async def test_the_window_aggregate_decides(start: Start, clock: Clock) -> None:
    triggers = await start(rules(metric_rule(window=300, aggregate="mean")))
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.0}) == []
    clock.advance(60)
    # One spike does not lift a 5-minute mean over 0.2 ...
    assert await tick(triggers, {"drift_psi{feature=amount}": 0.3}) == []
    clock.advance(60)
    # ... a sustained shift does.
    [firing] = await tick(triggers, {"drift_psi{feature=amount}": 0.5})
    assert firing.evidence["series"] == {
        "drift_psi{feature=amount}": pytest.approx((0.0 + 0.3 + 0.5) / 3)}


async def test_a_counter_rule_fires_on_its_increase_not_its_level(start: Start,
                                                                  clock: Clock) -> None:
    rule = metric_rule("alarms", metric="drift_alarms_total", aggregate="increase",
                       comparison=">", threshold=0, window=300)
    triggers = await start(rules(rule))
    for _ in range(3):  # a counter that stopped at 7 alarms: nothing new
        assert await tick(triggers, {"drift_alarms_total": 7}) == []
        clock.advance(60)
    [firing] = await tick(triggers, {"drift_alarms_total": 9})
    assert firing.evidence["series"] == {"drift_alarms_total": 2}


async def test_a_selector_without_labels_watches_every_series_and_fires_once(
        start: Start) -> None:
    triggers = await start(rules(metric_rule(metric="drift_psi", aggregate="last")))
    [firing] = await tick(triggers, {
        "drift_psi{feature=amount}": 0.4, "drift_psi{feature=hour}": 0.1,
        'drift_psi{feature="merchant category"}': 0.7, "roc_auc{model_version=3}": 0.9})
    assert firing.evidence["series_breaching"] == 2
    assert firing.evidence["series"] == {"drift_psi{feature=amount}": 0.4,
                                         'drift_psi{feature="merchant category"}': 0.7}


async def test_series_of_other_labels_or_without_values_do_not_fire(start: Start) -> None:
    triggers = await start(rules(metric_rule(metric="roc_auc{model_version=3}",
                                             comparison="<", threshold=0.7)))
    assert await tick(triggers, {"roc_auc{model_version=4}": 0.5,
                                 "roc_auc{model_version=3}": float("nan"),
                                 "not a {selector": 0.1}) == []


async def test_repeated_and_concurrent_evaluations_fire_one_action(
        start: Start, clock: Clock, event_store: AsyncEventStore) -> None:
    triggers = await start(rules(metric_rule(aggregate="last")))
    snapshot = {"drift_psi{feature=amount}": 0.9}
    batches = await asyncio.gather(*(triggers.evaluate(snapshot) for _ in range(50)))
    clock.advance(1)
    batches += await asyncio.gather(*(triggers.evaluate(snapshot) for _ in range(50)))
    tasks = [task for batch in batches for task in batch]
    assert len(tasks) == 1
    await triggers.idle()
    assert len(await event_store.firings(0, 2**62)) == 1


def test_cool_downs_grant_one_claim_among_threads() -> None:
    cool_downs = CoolDowns({"rule": 60.0})
    barrier = threading.Barrier(8)
    granted: list[bool] = []

    def contend() -> None:
        barrier.wait()
        granted.extend(cool_downs.claim("rule", START) for _ in range(100))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 1
    assert cool_downs.claim("rule", START + 60)


async def test_each_firing_is_recorded_with_its_evidence(
        start: Start, event_store: AsyncEventStore) -> None:
    triggers = await start(rules(metric_rule(threshold=0.25, aggregate="max")))
    [returned] = await tick(triggers, {"drift_psi{feature=amount}": 0.31})
    [stored] = await event_store.firings(0, 2**62, rule="psi-high")
    assert stored == returned
    assert stored.id is not None
    assert (stored.fired_at_ms, stored.action, stored.outcome) == (
        int(START * 1000), "notify", "ok")
    assert stored.evidence == {
        "kind": "metric", "metric": "drift_psi{feature=amount}", "aggregate": "max",
        "window_s": 60.0, "comparison": ">", "threshold": 0.25, "for_s": 0.0,
        "holding_since_ms": int(START * 1000),
        "series": {"drift_psi{feature=amount}": 0.31}, "series_breaching": 1}


async def test_cool_downs_survive_a_restart(start: Start, clock: Clock) -> None:
    rule_set = rules(metric_rule(aggregate="last", cool_down=600))
    snapshot = {"drift_psi{feature=amount}": 0.9}
    first = await start(rule_set)
    assert len(await tick(first, snapshot)) == 1
    await first.aclose()

    clock.advance(300)
    restarted = await start(rule_set)  # same store, a new process's state
    assert await tick(restarted, snapshot) == []
    clock.advance(300)
    assert len(await tick(restarted, snapshot)) == 1


async def test_notify_logs_a_warning_and_counts(start: Start,
                                                caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    triggers = await start(rules(metric_rule(aggregate="last")), registry)
    with caplog.at_level(logging.WARNING, logger="agogosml.monitor.triggers"):
        await tick(triggers, {"drift_psi{feature=amount}": 0.9})
    [record] = [r for r in caplog.records if r.getMessage() == "trigger fired"]
    fields: dict[str, Any] = vars(record)
    assert fields["rule"] == "psi-high"
    assert fields["summary"] == "drift_psi{feature=amount} last 0.9 > 0.2"
    assert registry.get_sample_value("agogosml_monitor_trigger_notifications_total",
                                     {"rule": "psi-high"}) == 1
    assert registry.get_sample_value("agogosml_monitor_trigger_firings_total", {
        "rule": "psi-high", "action": "notify", "outcome": "ok"}) == 1
