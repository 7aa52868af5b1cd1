"""The triggers' Prometheus counters. Label values are rule names from the rules file,
action types and outcome classes: none comes from metric values or alert payloads."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

OUTCOME_CLASSES = ("ok", "http_4xx", "http_5xx", "timeout", "unreachable", "refused", "error")


def outcome_class(outcome: str) -> str:
    """The bounded class of a recorded outcome ("http 503" → "http_5xx")."""
    if outcome.startswith("ok"):
        return "ok"
    if outcome.startswith("http 4"):
        return "http_4xx"
    if outcome.startswith("http "):
        return "http_5xx"
    for known in ("timeout", "unreachable", "refused"):
        if outcome.startswith(known):
            return known
    return "error"


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.firings = Counter("agogosml_monitor_trigger_firings",
                               "Actions taken by trigger rules, by outcome class",
                               ["rule", "action", "outcome"], registry=registry)
        self.notifications = Counter("agogosml_monitor_trigger_notifications",
                                     "Notify actions taken", ["rule"], registry=registry)
        self.alerts = Counter("agogosml_monitor_alerts_received",
                              "Alertmanager alerts received, by what became of them",
                              ["result"], registry=registry)

    def fired(self, rule: str, action: str, outcome: str) -> None:
        self.firings.labels(rule=rule, action=action, outcome=outcome_class(outcome)).inc()
