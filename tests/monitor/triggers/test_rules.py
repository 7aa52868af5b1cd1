"""The rules file: what it accepts, and every mistake refused with the rule and field named."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agogosml.monitor.triggers import RulesError, load_rules, parse_rules
from agogosml.monitor.triggers.rules import MetricRule, RetrainConfig, RuleSet
from agogosml.monitor.triggers.selectors import Selector, parse_selector
from tests.monitor.triggers.conftest import alert_rule, metric_rule


def dump(document: Any) -> str:
    return yaml.safe_dump(document)


def test_the_shipped_example_file_parses_into_typed_rules() -> None:
    path = resources.files("agogosml.monitor.triggers") / "default-rules.yaml"
    rule_set = load_rules(Path(str(path)))
    by_name = {rule.name: rule for rule in rule_set.all()}
    drift = by_name["drift-alarms"]
    assert isinstance(drift, MetricRule)
    assert (drift.aggregate, drift.window, drift.cool_down) == ("increase", 300.0, 21_600.0)
    assert isinstance(drift.action, RetrainConfig)
    assert drift.action.trigger == "drift"
    psi = by_name["amount-psi"]
    assert isinstance(psi, MetricRule)
    assert psi.hold == 600.0
    assert psi.selector == Selector("drift_psi", frozenset({("feature", "amount")}))


def test_defaults_fill_what_a_rule_leaves_out() -> None:
    rule_set = parse_rules(dump({"rules": [
        metric_rule(action={"type": "retrain", "url": "http://retrain:8080"})],
        "alerts": [alert_rule(alertname=None)]}))
    [rule] = rule_set.rules
    assert rule.aggregate == "mean"
    assert isinstance(rule.action, RetrainConfig)
    assert rule.action.trigger == "drift"
    assert rule_set.alerts[0].matches_alertname == "drift-page"


def test_rules_are_frozen() -> None:
    [rule] = parse_rules(dump({"rules": [metric_rule()]})).rules
    with pytest.raises(ValueError, match="frozen"):
        rule.threshold = 9  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("comparison", "!=", "'>', '>=', '<' or '<='"),
    ("threshold", "0.2", "valid number"),
    ("threshold", float("nan"), "finite number"),
    ("threshold", True, "valid number"),
    ("window", 0, "greater than 0"),
    ("window", "5 minutes", "a duration is"),
    ("for", -1, "greater than or equal to 0"),
    ("cool_down", "0s", "greater than 0"),
    ("metric", "drift_psi{feature=}", "not a metric selector"),
    ("metric", "drift_psi{a=1,a=2}", "twice"),
    ("aggregate", "median", "'mean', 'max', 'min', 'last' or 'increase'"),
    ("action", {"type": "pager"}, "does not match any of the expected tags"),
    ("action", {"type": "webhook"}, "Field required"),
    ("action", {"type": "webhook", "url": "ftp://x"}, "URL scheme should be 'http' or 'https'"),
    ("action", {"type": "retrain", "url": "http://r", "trigger": "whim"}, "'drift'"),
    ("action", {"type": "notify", "channel": "#ops"}, "Extra inputs are not permitted"),
])
def test_each_bad_field_is_refused_naming_the_rule_and_field(field: str, value: Any,
                                                             reason: str) -> None:
    document = {"rules": [metric_rule("fine"), metric_rule("broken", **{field: value})]}
    with pytest.raises(RulesError) as refused:
        parse_rules(dump(document), source="rules.yaml")
    message = str(refused.value)
    assert message.startswith("rules.yaml: rule 'broken' field ")
    assert f"'{field}" in message
    assert reason in message


def test_a_missing_field_is_named() -> None:
    rule = metric_rule()
    del rule["threshold"]
    with pytest.raises(RulesError, match=r"rule 'psi-high' field 'threshold': Field required"):
        parse_rules(dump({"rules": [rule]}))


def test_a_rule_without_a_usable_name_is_named_by_position() -> None:
    with pytest.raises(RulesError, match=r"alert #2 field 'name': Input should be a valid str"):
        parse_rules(dump({"alerts": [alert_rule(), alert_rule(7, alertname="x")]}))  # type: ignore[arg-type]
    with pytest.raises(RulesError, match=r"alert 'Bad Name' field 'name': String should match"):
        parse_rules(dump({"alerts": [alert_rule("Bad Name")]}))


@pytest.mark.parametrize(("document", "reason"), [
    ({"rules": [metric_rule("same")], "alerts": [alert_rule("same")]}, "used twice"),
    ({"alerts": [alert_rule("a"), alert_rule("b")]}, "mapped by two alert rules"),
    ({"rules": metric_rule()}, "field 'rules': Input should be a list"),
    ({"rule": []}, "field 'rule': Extra inputs are not permitted"),
    (["rules"], "expected a mapping"),
])
def test_file_level_mistakes_are_refused(document: Any, reason: str) -> None:
    with pytest.raises(RulesError, match=reason):
        parse_rules(dump(document))


def test_files_that_are_not_yaml_or_cannot_be_read_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="not a YAML document"):
        parse_rules("rules: [")
    with pytest.raises(RulesError, match=r"cannot be read"):
        load_rules(tmp_path / "absent.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * (2 * 1024 * 1024))
    with pytest.raises(RulesError, match="larger than"):
        load_rules(huge)


def test_durations_read_as_seconds() -> None:
    [rule] = parse_rules(dump({"rules": [metric_rule(window="1.5h", cool_down="1d")]})).rules
    assert (rule.window, rule.cool_down) == (5_400.0, 86_400.0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30)
rule_fields = st.sampled_from(["name", "metric", "comparison", "threshold", "window", "for",
                               "cool_down", "action", "aggregate", "alertname", "type", "url"])
near_rules = st.fixed_dictionaries({}, optional={
    "rules": st.lists(st.dictionaries(rule_fields, json_values, max_size=9)
                      .map(lambda fields: {**metric_rule(), **fields}), max_size=3),
    "alerts": st.lists(st.dictionaries(rule_fields, json_values, max_size=5)
                       .map(lambda fields: {**alert_rule(), **fields}), max_size=3)})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(document=json_values | near_rules, as_json=st.booleans())
def test_any_document_is_either_rules_or_refused_with_rules_error(document: Any,
                                                                  as_json: bool) -> None:
    text = json.dumps(document) if as_json else yaml.safe_dump(document)
    outcome = _parse_or_refusal(text)
    assert isinstance(outcome, RuleSet) or str(outcome).startswith("rules: ")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_is_either_rules_or_refused_with_rules_error(text: str) -> None:
    outcome = _parse_or_refusal(text)
    assert isinstance(outcome, RuleSet | RulesError)


def _parse_or_refusal(text: str) -> RuleSet | RulesError:
    """The rules, or the RulesError refusing them; any other exception fails the test."""
    try:
        return parse_rules(text)
    except RulesError as error:
        return error


labels = st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
                         st.text(st.characters(exclude_characters='"\n', codec="utf-8"),
                                 max_size=10),
                         max_size=3)


@given(name=st.from_regex(r"[a-z_:][a-z0-9_:]{0,15}", fullmatch=True), labels=labels)
def test_a_selector_reads_back_what_it_writes(name: str, labels: dict[str, str]) -> None:
    selector = Selector(name, frozenset(labels.items()))
    assert parse_selector(str(selector)) == selector
