"""Metric selectors: how rules and the monitor name the values they share.

A selector is a metric name, optionally followed by labels in braces:

    drift_alarms_total
    drift_psi{feature=amount}
    roc_auc{model_version=3}
    prediction_share{prediction="1"}

Values are bare (letters, digits and `_ . : / -`) or double-quoted (anything but a double
quote and a newline). The label order does not matter. A rule's selector matches every
series of the snapshot with the same name whose labels include the rule's labels, so
`drift_psi` matches `drift_psi{feature=amount}` and `drift_psi{feature=age}` alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agogosml.monitor.triggers.errors import RulesError

_NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_BARE = r"[A-Za-z0-9_.:/-]+"
_QUOTED = r'"[^"\n]*"'
_PAIR = rf"\s*({_KEY})\s*=\s*({_BARE}|{_QUOTED})\s*"
_SELECTOR = re.compile(rf"\s*({_NAME})\s*(?:\{{((?:{_PAIR},)*(?:{_PAIR})?)\}})?\s*")
_PAIRS = re.compile(_PAIR)
_BARE_VALUE = re.compile(_BARE)
MAX_SELECTOR_CHARS = 1_000


@dataclass(frozen=True)
class Selector:
    name: str
    labels: frozenset[tuple[str, str]] = frozenset()

    def matches(self, series: Selector) -> bool:
        return self.name == series.name and self.labels <= series.labels

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        pairs = ",".join(f"{key}={_quote(value)}" for key, value in sorted(self.labels))
        return f"{self.name}{{{pairs}}}"


def _quote(value: str) -> str:
    return value if _BARE_VALUE.fullmatch(value) else f'"{value}"'


def parse_selector(text: str) -> Selector:
    """The selector `text` spells, or RulesError saying why it is not one."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise RulesError(f"a selector has at most {MAX_SELECTOR_CHARS} characters")
    found = _SELECTOR.fullmatch(text)
    if found is None:
        raise RulesError(f"{text[:100]!r} is not a metric selector such as "
                         "'drift_psi{feature=amount}'")
    labels: dict[str, str] = {}
    for key, value in _PAIRS.findall(found.group(2) or ""):
        if key in labels:
            raise RulesError(f"{text[:100]!r} names label {key!r} twice")
        labels[key] = value[1:-1] if value.startswith('"') else value
    return Selector(found.group(1), frozenset(labels.items()))
