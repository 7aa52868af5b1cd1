"""Everything the monitor service holds for its triggers, built from a rules file.

    triggers = Triggers(load_rules(path), AsyncEventStore(store), registry, TriggerSecrets(),
                        tracking=tracking)                           # in create_app
    await triggers.start()                                           # in the lifespan
    await triggers.evaluate({"drift_psi{feature=amount}": 0.31})   # every tick
    app.include_router(triggers.router(credentials, auth_metrics))  # POST /v1/alerts
    await triggers.aclose()                                          # at shutdown

The constructor refuses (RulesError) a rule whose action lacks what it needs here (a retrain rule
without AGOGOSML_MONITOR_RETRAIN_TOKEN, a rollback rule without a tracking store); `start` reads
the recent firings back so cool-downs survive a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agogosml.modelloop.tracking import Tracking
from agogosml.monitor.store.base import AsyncEventStore, Firing
from agogosml.monitor.triggers.actions import Action, NotifyAction
from agogosml.monitor.triggers.alertmanager import (
    DEFAULT_MAX_BODY_BYTES,
    AlertReceiver,
    alertmanager_router,
)
from agogosml.monitor.triggers.cooldown import CoolDowns
from agogosml.monitor.triggers.dispatch import Dispatcher
from agogosml.monitor.triggers.errors import RulesError
from agogosml.monitor.triggers.evaluator import Evaluator
from agogosml.monitor.triggers.http_actions import RetrainAction, WebhookAction
from agogosml.monitor.triggers.metrics import TriggerMetrics
from agogosml.monitor.triggers.rollback import ModelAliasRollback, RollbackAction
from agogosml.monitor.triggers.rules import (
    ActionConfig,
    NotifyConfig,
    RetrainConfig,
    RollbackConfig,
    RuleSet,
    WebhookConfig,
)
from agogosml.web.auth import AuthMetrics, Credentials


@dataclass(frozen=True)
class TriggerSecrets:
    """What the actions need from the service's settings (AGOGOSML_MONITOR_RETRAIN_URL,
    _RETRAIN_TOKEN, _WEBHOOK_TOKEN): the retrain server a `retrain` rule without its own
    `url` calls, its token, and the token sent to webhooks (if any)."""

    retrain_token: SecretStr | None = None
    webhook_token: SecretStr | None = None
    retrain_url: str | None = None


def refuse_unusable(rules: RuleSet, secrets: TriggerSecrets, tracking: Tracking | None) -> None:
    """RulesError for the first rule whose action lacks what it needs in this process."""
    for name, config in rules.actions().items():
        if isinstance(config, RetrainConfig) and secrets.retrain_token is None:
            raise RulesError(f"rule {name!r} field 'action': a retrain action needs "
                             "AGOGOSML_MONITOR_RETRAIN_TOKEN")
        if isinstance(config, RetrainConfig) and config.url is None \
                and secrets.retrain_url is None:
            raise RulesError(f"rule {name!r} field 'action': a retrain action needs a url, "
                             "or AGOGOSML_MONITOR_RETRAIN_URL")
        if isinstance(config, RollbackConfig) and tracking is None:
            raise RulesError(f"rule {name!r} field 'action': a rollback action needs the "
                             "monitor's MLflow tracking settings")


def build_action(rule: str, config: ActionConfig, *, client: httpx.AsyncClient,
                 secrets: TriggerSecrets, tracking: Tracking | None,
                 metrics: TriggerMetrics) -> Action:
    match config:
        case WebhookConfig():
            return WebhookAction(client, str(config.url), config.timeout, secrets.webhook_token)
        case RetrainConfig():
            url = str(config.url) if config.url is not None else secrets.retrain_url
            if secrets.retrain_token is None or url is None:
                raise RulesError(f"rule {rule!r}: a retrain action needs a token and a url")
            return RetrainAction(client, url, secrets.retrain_token,
                                 config.trigger, config.timeout)
        case RollbackConfig():
            if tracking is None:
                raise RulesError(f"rule {rule!r}: a rollback action needs a tracking store")
            return RollbackAction(ModelAliasRollback(tracking), config.timeout)
        case NotifyConfig():
            return NotifyAction(metrics, config.timeout)


class Triggers:
    """Built where the service builds its app (the constructor is synchronous and refuses
    unusable rules); `start()` in the app's lifespan, before the first tick, reads the recent
    firings back; `aclose()` at shutdown. `actions` replaces the built action of the rules it
    names (a custom rollback target, for one)."""

    def __init__(self, rules: RuleSet, store: AsyncEventStore, registry: CollectorRegistry,
                 secrets: TriggerSecrets, *, tracking: Tracking | None = None,
                 clock: Callable[[], float] = time.time,
                 actions: Mapping[str, Action] | None = None) -> None:
        refuse_unusable(rules, secrets, tracking)
        metrics = TriggerMetrics(registry)
        # Opens no connection until first used, so it may be made outside the event loop.
        self._client = httpx.AsyncClient()
        built = {name: build_action(name, config, client=self._client, secrets=secrets,
                                    tracking=tracking, metrics=metrics)
                 for name, config in rules.actions().items()}
        built.update(actions or {})
        self.rules = rules
        self.clock = clock
        self.dispatcher = Dispatcher(built, CoolDowns(rules.cool_downs()), store, metrics)
        self.evaluator = Evaluator(rules.rules, self.dispatcher, clock)
        self.receiver = AlertReceiver(rules.alerts, self.dispatcher, metrics, clock)

    async def start(self) -> None:
        """Reads the firings of the last cool-down back, so a restart does not repeat an
        action its cool-down forbids."""
        await self.dispatcher.restore(self.clock())

    async def evaluate(self, snapshot: Mapping[str, float],
                       now: float | None = None) -> list[asyncio.Task[Firing]]:
        return await self.evaluator.evaluate(snapshot, now)

    def router(self, credentials: Credentials, auth_metrics: AuthMetrics, *,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> APIRouter:
        return alertmanager_router(self.receiver, credentials, auth_metrics,
                                   max_body_bytes=max_body_bytes)

    async def idle(self) -> None:
        await self.dispatcher.idle()

    async def aclose(self, timeout_s: float = 10.0) -> None:
        await self.dispatcher.aclose(timeout_s)
        await self._client.aclose()
