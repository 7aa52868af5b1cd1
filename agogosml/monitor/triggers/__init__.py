"""Triggers that act: declarative rules over the monitor's metrics and Alertmanager's
alerts, each firing one action (webhook, retrain, rollback, notify) at most once per
cool-down, every firing recorded in the event store with its evidence.

- rules.py: the rules file (YAML), parsed strictly into frozen objects.
- selectors.py: how metric values are named (`drift_psi{feature=amount}`).
- evaluator.py: `evaluate(snapshot, now)` each tick; for-durations.
- alertmanager.py: the webhook receiver and its `POST /v1/alerts` router.
- cooldown.py, dispatch.py: one firing per cool-down; run, record, count.
- actions.py, http_actions.py, rollback.py: the actions.
- assembly.py: `Triggers.start(...)`, what the service holds.
- default-rules.yaml: an example rules file, shipped with the package.
"""

from agogosml.monitor.triggers.alertmanager import (
    AlertmanagerPayload,
    AlertReceiver,
    alertmanager_router,
)
from agogosml.monitor.triggers.assembly import Triggers, TriggerSecrets
from agogosml.monitor.triggers.errors import RulesError, TriggerError
from agogosml.monitor.triggers.evaluator import Evaluator, Observation
from agogosml.monitor.triggers.rules import RuleSet, load_rules, parse_rules

__all__ = ["AlertReceiver", "AlertmanagerPayload", "Evaluator", "Observation", "RuleSet",
           "RulesError", "TriggerError", "TriggerSecrets", "Triggers", "alertmanager_router",
           "load_rules", "parse_rules"]
