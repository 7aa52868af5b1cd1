"""The rules file: what to watch, when to act, and how.

    rules:                       # conditions on the monitor's metric values
      - name: drift-alarms
        metric: drift_alarms_total          # a selector (agogosml.monitor.triggers.selectors)
        aggregate: increase                 # over the window: mean (default) | max | min |
                                            #   last | increase (a counter's rise)
        comparison: ">"                     # > | >= | < | <=
        threshold: 0
        window: 5m                          # seconds, or a number with s | m | h | d
        for: 1m                             # how long the condition must hold (default 0)
        cool_down: 1h                       # no second firing of this rule before then
        action: {type: retrain, url: "http://retrain:8080", trigger: drift}
    alerts:                      # Alertmanager alerts mapped to actions
      - name: latency-page
        alertname: AgogosmlLatencyHigh      # default: the rule's name
        cool_down: 30m
        action: {type: webhook, url: "https://hooks.example.com/agogosml"}

Actions: `webhook` (url, timeout), `retrain` (url of the retrain server, trigger, timeout),
`rollback` (target: model_alias; the tracking store comes from the service's settings),
`notify` (a WARNING log line and a counter). Tokens never go in this file: the service
reads them from its environment (agogosml.monitor.triggers.assembly.TriggerSecrets).

Rule names are unique across both lists: they key the cool-downs, the firing records and
the metrics' labels. Every value is checked strictly (no "300" for 300), so a mistake stops
the monitor at start-up with the rule and field named, instead of misbehaving later.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from agogosml.modelloop.choices import Trigger
from agogosml.monitor.triggers.errors import RulesError
from agogosml.monitor.triggers.selectors import Selector, parse_selector

MAX_RULES = 500
MAX_RULES_FILE_BYTES = 1024 * 1024
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def _duration(value: object) -> object:
    """Seconds from a number or from text like "90s", "5m", "1.5h", "1d"."""
    if isinstance(value, str):
        found = _DURATION.fullmatch(value.strip())
        if found is None:
            raise ValueError("a duration is a number of seconds or text like 30s, 5m, 1h, 1d")
        return float(found.group(1)) * _UNITS[found.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(_duration), Field(ge=0, le=366 * 86_400,
                                                                allow_inf_nan=False)]
PositiveSeconds = Annotated[Seconds, Field(gt=0)]
RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Comparison = Literal[">", ">=", "<", "<="]
Aggregate = Literal["mean", "max", "min", "last", "increase"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", populate_by_name=True)


class WebhookConfig(_Strict):
    """POST the firing as JSON to `url`."""

    type: Literal["webhook"]
    url: HttpUrl
    timeout: PositiveSeconds = 10.0


class RetrainConfig(_Strict):
    """POST {"trigger": ...} to the retrain server at `url` (its base URL). The server
    answers when training is done, so the timeout allows for a whole retrain."""

    type: Literal["retrain"]
    url: HttpUrl | None = None
    """None: the monitor's AGOGOSML_MONITOR_RETRAIN_URL."""
    trigger: Trigger = "drift"
    timeout: PositiveSeconds = 1_800.0


class RollbackConfig(_Strict):
    """Move the serving model back. `model_alias`: champion ← previous in the MLflow
    registry (agogosml.modelloop.registry.rollback)."""

    type: Literal["rollback"]
    target: Literal["model_alias"] = "model_alias"
    timeout: PositiveSeconds = 60.0


class NotifyConfig(_Strict):
    """A WARNING log line and a counter: for rules that should only be seen."""

    type: Literal["notify"]
    timeout: PositiveSeconds = 5.0


ActionConfig = Annotated[WebhookConfig | RetrainConfig | RollbackConfig | NotifyConfig,
                         Field(discriminator="type")]


class MetricRule(_Strict):
    """Fires `action` when `aggregate` of a matching series over the last `window`
    seconds compares true with `threshold`, continuously for `hold` seconds (`for` in the
    file), and the rule has not fired in the last `cool_down` seconds."""

    name: RuleName
    metric: str = Field(max_length=1_000)
    aggregate: Aggregate = "mean"
    comparison: Comparison
    threshold: float = Field(allow_inf_nan=False)
    window: PositiveSeconds
    hold: Seconds = Field(0.0, alias="for")
    cool_down: PositiveSeconds
    action: ActionConfig

    @field_validator("metric")
    @classmethod
    def _selector(cls, value: str) -> str:
        try:
            parse_selector(value)
        except RulesError as error:
            raise ValueError(str(error)) from None
        return value

    @property
    def selector(self) -> Selector:
        return parse_selector(self.metric)

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        match self.comparison:
            case ">":
                return value > self.threshold
            case ">=":
                return value >= self.threshold
            case "<":
                return value < self.threshold
            case "<=":
                return value <= self.threshold


class AlertRule(_Strict):
    """Fires `action` for a firing Alertmanager alert whose `agogosml_rule` label is this
    rule's name, or else whose `alertname` label is `alertname` (default: the name)."""

    name: RuleName
    alertname: str | None = Field(None, min_length=1, max_length=200)
    cool_down: PositiveSeconds
    action: ActionConfig

    @property
    def matches_alertname(self) -> str:
        return self.alertname or self.name


class RuleSet(_Strict):
    # Not strict: YAML gives lists, and the rules are kept as tuples.
    rules: tuple[MetricRule, ...] = Field((), max_length=MAX_RULES, strict=False)
    alerts: tuple[AlertRule, ...] = Field((), max_length=MAX_RULES, strict=False)

    def all(self) -> tuple[MetricRule | AlertRule, ...]:
        return (*self.rules, *self.alerts)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.all():
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; names must be unique")
            seen.add(rule.name)
        alertnames = [rule.matches_alertname for rule in self.alerts]
        for name in alertnames:
            if alertnames.count(name) > 1:
                raise ValueError(f"alertname {name!r} is mapped by two alert rules")
        return self

    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.all())

    def cool_downs(self) -> dict[str, float]:
        return {rule.name: rule.cool_down for rule in self.all()}

    def actions(self) -> dict[str, ActionConfig]:
        return {rule.name: rule.action for rule in self.all()}


def load_rules(path: str | Path) -> RuleSet:
    """The rules in a YAML (or JSON) file, or RulesError naming what is wrong."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_RULES_FILE_BYTES + 1)
    except OSError as error:
        raise RulesError(f"rules file {path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_RULES_FILE_BYTES:
        raise RulesError(f"rules file {path}: larger than {MAX_RULES_FILE_BYTES} bytes")
    return parse_rules(data, source=str(path))


def parse_rules(text: str | bytes, source: str = "rules") -> RuleSet:
    try:
        document = yaml.safe_load(text)
    # A hostile file can also trip the loader's own constructors (dates, numbers) or its
    # recursion; every way a document fails to load is the same answer.
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as error:
        raise RulesError(f"{source}: not a YAML document: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise RulesError(f"{source}: expected a mapping with 'rules' and/or 'alerts', "
                         f"found {type(document).__name__}")
    try:
        return RuleSet.model_validate(document)
    except ValidationError as error:
        raise RulesError(f"{source}: {_describe(error, document)}") from None


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def _describe(error: ValidationError, document: dict[Any, Any]) -> str:
    """Each problem as `rule 'name' field 'threshold': reason`, with the rule's position
    when it has no usable name."""
    problems = []
    for item in error.errors()[:10]:
        location = list(item["loc"])
        where = _rule_label(location, document)
        field = ".".join(str(part) for part in location if not isinstance(part, int))
        if item["type"] == "union_tag_invalid":
            field = f"{field}.type" if field else "type"
        message = "Input should be a list" if item["type"] == "tuple_type" else item["msg"]
        text = f"{where} field {field!r}" if field else where
        problems.append(f"{text}: {message}")
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _rule_label(location: list[Any], document: dict[Any, Any]) -> str:
    """Consumes the list name and index from `location`; names the rule they point to."""
    if len(location) < 2 or location[0] not in ("rules", "alerts") \
            or not isinstance(location[1], int):
        return "file"
    section, index = location.pop(0), location.pop(0)
    entries = document.get(section)
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    if isinstance(name, str) and name and len(name) <= 63:
        return f"{section[:-1]} {name!r}"
    return f"{section[:-1]} #{index + 1}"
