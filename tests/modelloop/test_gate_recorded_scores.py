"""The gate takes the champion's holdout metrics from the champion's own gate record when
the holdout rows, the model and the library versions are the same; the result equals
scoring the champion again, and a changed holdout scores it again."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agogosml.modelloop import gate
from agogosml.modelloop.dataset import DEMO_SUBJECT
from agogosml.modelloop.gate import HOLDOUT_SCORES_ARTIFACT, GateReport, evaluate
from agogosml.modelloop.registry import promote, register_challenger
from agogosml.modelloop.shards import held_out
from agogosml.modelloop.tracking import Tracking, read_text_artifact
from agogosml.modelloop.training import TrainConfig, load_holdout, train

SHARDS = 3


def without(frame: pd.DataFrame, held: bool, path: Path) -> Path:
    """The frame without its first subject that is (or is not) held out."""
    config = TrainConfig(path)
    gone = next(str(subject) for subject in sorted(frame[DEMO_SUBJECT].unique())
                if held_out(subject, config.holdout_fraction, config.seed) == held)
    frame[frame[DEMO_SUBJECT] != gone].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def champion(tracking: Tracking, pseudonymized_csv: Path) -> tuple[Tracking, TrainConfig, str]:
    loop = replace(tracking, model_name="recorded-scores")
    config = TrainConfig(pseudonymized_csv, shards=SHARDS)
    run_id = train(loop, config).run_id
    report = evaluate(loop, run_id)
    assert report.passed, report.summary()
    register_challenger(loop, report)
    promote(loop)
    return loop, config, run_id


def scored_champion(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Spies on the gate's scoring of the champion; returns the versions it scored."""
    calls: list[str | None] = []
    original: Callable[..., Any] = gate._champion_metrics

    def spy(model_name: str, version: str | None, *args: Any) -> Any:
        calls.append(version)
        return original(model_name, version, *args)

    monkeypatch.setattr(gate, "_champion_metrics", spy)
    return calls


def uncached(tracking: Tracking, run_id: str, monkeypatch: pytest.MonkeyPatch) -> GateReport:
    with monkeypatch.context() as patch:
        patch.setattr(gate, "_recorded_champion_metrics", lambda *args: None)
        return evaluate(tracking, run_id)


def same_decisions(cached: GateReport, scored: GateReport) -> None:
    assert cached.passed == scored.passed
    assert cached.champion_version == scored.champion_version
    assert cached.candidate_metrics == scored.candidate_metrics
    assert cached.champion_metrics is not None
    assert scored.champion_metrics is not None
    assert cached.champion_metrics.keys() == scored.champion_metrics.keys()
    for name, value in scored.champion_metrics.items():
        assert cached.champion_metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert [(c.name, c.passed) for c in cached.checks] == [
        (c.name, c.passed) for c in scored.checks]
    assert [c.reason for c in cached.checks if c.name != "batch_latency"] == [
        c.reason for c in scored.checks if c.name != "batch_latency"]


def test_an_unchanged_holdout_takes_the_champions_recorded_metrics(
        champion: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, champion_run = champion
    smaller = without(pseudonymized_frame, False, tmp_path / "without.csv")
    candidate = train(loop, replace(config, dataset=smaller), "erasure",
                      reuse_from=champion_run)
    assert load_holdout(candidate.run_id).equals(load_holdout(champion_run))
    calls = scored_champion(monkeypatch)

    cached = evaluate(loop, candidate.run_id)

    assert calls == [], "the champion was not loaded and scored again"
    recorded = json.loads(read_text_artifact(champion_run, HOLDOUT_SCORES_ARTIFACT))
    assert cached.champion_metrics == recorded["metrics"]
    scored = uncached(loop, candidate.run_id, monkeypatch)
    assert calls == [cached.champion_version]
    same_decisions(cached, scored)


def test_a_changed_holdout_scores_the_champion_again(
        champion: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, champion_run = champion
    smaller = without(pseudonymized_frame, True, tmp_path / "without-held.csv")
    candidate = train(loop, replace(config, dataset=smaller), "erasure",
                      reuse_from=champion_run)
    assert len(load_holdout(candidate.run_id)) < len(load_holdout(champion_run))
    calls = scored_champion(monkeypatch)

    report = evaluate(loop, candidate.run_id)

    assert calls == [report.champion_version]
    same_decisions(report, uncached(loop, candidate.run_id, monkeypatch))


def test_other_library_versions_score_the_champion_again(
        champion: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, champion_run = champion
    smaller = without(pseudonymized_frame, False, tmp_path / "without.csv")
    candidate = train(loop, replace(config, dataset=smaller), "erasure",
                      reuse_from=champion_run)
    calls = scored_champion(monkeypatch)
    monkeypatch.setattr(gate, "sklearn_version", "0.0.0")

    report = evaluate(loop, candidate.run_id)

    assert calls == [report.champion_version]
    assert report.passed, report.summary()
