"""Alertmanager's webhook (payload version 4) mapped to the same actions, cool-downs and
firing records as the metric rules.

A firing alert maps to the alert rule named by its `agogosml_rule` label, or else to the
rule whose `alertname` equals its `alertname` label. Resolved alerts and alerts no rule
maps are counted and otherwise ignored. Alerts of one delivery that map to the same rule
fire it once; Alertmanager's repeats (every repeat_interval, or after a failed delivery)
fall inside the cool-down and do nothing. Rule names in records and metrics come from the
rules file, never from the payload.

`POST /v1/alerts` takes a bearer token (Alertmanager's `http_config.authorization`), caps
the body before parsing it, and answers 422 with the reason for a body that is not a
version 4 payload within the limits below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agogosml.monitor.store.base import Firing, Json
from agogosml.monitor.triggers.dispatch import Dispatcher
from agogosml.monitor.triggers.metrics import TriggerMetrics
from agogosml.monitor.triggers.rules import AlertRule
from agogosml.web.auth import AuthMetrics, Credentials, Guard
from agogosml.web.bodies import MIB, read_capped
from agogosml.web.responses import JsonResponse

MAX_ALERTS = 1_000
MAX_EVIDENCE_ALERTS = 5
DEFAULT_MAX_BODY_BYTES = 4 * MIB

LabelName = Annotated[str, Field(min_length=1, max_length=256)]
Texts = Annotated[dict[LabelName, Annotated[str, Field(max_length=8_192)]],
                  Field(max_length=128)]


class _Payload(BaseModel):
    # Alertmanager adds fields over time; unknown ones are not a reason to drop an alert.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Payload):
    status: Literal["firing", "resolved"]
    labels: Texts
    annotations: Texts = Field(default_factory=dict)
    startsAt: datetime  # Alertmanager spells its fields so
    endsAt: datetime | None = None
    generatorURL: str = Field("", max_length=4_096)
    fingerprint: str = Field("", max_length=64)


class AlertmanagerPayload(_Payload):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = Field("", max_length=512)
    groupKey: str = Field("", max_length=8_192)
    truncatedAlerts: int = Field(0, ge=0)
    alerts: list[Alert] = Field(max_length=MAX_ALERTS)


@dataclass(frozen=True)
class Delivery:
    """What one payload did: rules fired, rules cooling down, alerts not acted on."""

    fired: tuple[str, ...]
    cooling_down: tuple[str, ...]
    ignored: int
    tasks: tuple[asyncio.Task[Firing], ...]


def _evidence(rule: AlertRule, payload: AlertmanagerPayload, alerts: list[Alert]) -> Json:
    return {"kind": "alert", "alertname": rule.matches_alertname, "receiver": payload.receiver,
            "alerts_matched": len(alerts),
            "alerts": [{"labels": alert.labels, "annotations": alert.annotations,
                        "starts_at": alert.startsAt.isoformat(),
                        "fingerprint": alert.fingerprint}
                       for alert in alerts[:MAX_EVIDENCE_ALERTS]]}


class AlertReceiver:
    def __init__(self, rules: Sequence[AlertRule], dispatcher: Dispatcher,
                 metrics: TriggerMetrics, clock: Callable[[], float] = time.time) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.clock = clock
        self._by_name = {rule.name: rule for rule in rules}
        self._by_alertname = {rule.matches_alertname: rule for rule in rules}

    def _rule_for(self, alert: Alert) -> AlertRule | None:
        named = self._by_name.get(alert.labels.get("agogosml_rule", ""))
        return named or self._by_alertname.get(alert.labels.get("alertname", ""))

    def receive(self, payload: AlertmanagerPayload, now: float | None = None) -> Delivery:
        """Starts the actions of the rules the payload's firing alerts map to. Must be
        called on the event loop."""
        at = self.clock() if now is None else now
        matched: dict[str, tuple[AlertRule, list[Alert]]] = {}
        ignored = 0
        for alert in payload.alerts:
            rule = self._rule_for(alert) if alert.status == "firing" else None
            if rule is None:
                ignored += 1
                self.metrics.alerts.labels(
                    result="resolved" if alert.status == "resolved" else "unmapped").inc()
                continue
            matched.setdefault(rule.name, (rule, []))[1].append(alert)
        fired, cooling, tasks = [], [], []
        for name, (rule, alerts) in matched.items():
            task = self.dispatcher.fire(name, at, _evidence(rule, payload, alerts),
                                        f"alert {rule.matches_alertname} x{len(alerts)}")
            self.metrics.alerts.labels(result="cooling_down" if task is None else "fired").inc(
                len(alerts))
            if task is None:
                cooling.append(name)
            else:
                fired.append(name)
                tasks.append(task)
        return Delivery(tuple(fired), tuple(cooling), ignored, tuple(tasks))


def alertmanager_router(receiver: AlertReceiver, credentials: Credentials,
                        auth_metrics: AuthMetrics, *,
                        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> APIRouter:
    """`POST /v1/alerts` for Alertmanager's webhook_config. The hosting app installs
    agogosml.web.errors' handlers (401, 413, 422 with the reason)."""
    guard = Guard(credentials, auth_metrics, "alerts")
    router = APIRouter(dependencies=[Depends(guard)])

    @router.post("/v1/alerts", response_class=JsonResponse)
    async def post_alerts(request: Request) -> JsonResponse:
        body = await read_capped(request, max_body_bytes)
        try:
            payload = AlertmanagerPayload.model_validate_json(body)
        except ValidationError as error:
            # The installed handler answers 422 with each problem's location and message
            # (never the offending input).
            raise RequestValidationError(
                [{"loc": ("body", *item["loc"]), "msg": item["msg"], "type": item["type"]}
                 for item in error.errors()[:20]]) from None
        delivery = receiver.receive(payload)
        return JsonResponse({"fired": delivery.fired, "cooling_down": delivery.cooling_down,
                             "ignored": delivery.ignored})

    return router
