"""A retrain that reuses shards takes their holdout predictions from the run it reuses
(shards/holdout_proba.npz) when the holdout and the shards' bytes are the same: the run's
metrics equal scoring every shard again, and a changed holdout scores them again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agogosml.modelloop import ensemble, training
from agogosml.modelloop.dataset import DEMO_SUBJECT
from agogosml.modelloop.shards import held_out
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, load_holdout, train

SHARDS = 3


def without(frame: pd.DataFrame, held: bool, path: Path) -> Path:
    """The frame without its first subject that is (or is not) held out."""
    gone = next(str(subject) for subject in sorted(frame[DEMO_SUBJECT].unique())
                if held_out(subject, 0.25, 7) == held)
    frame[frame[DEMO_SUBJECT] != gone].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def first(tracking: Tracking, pseudonymized_csv: Path) -> tuple[Tracking, TrainConfig, str]:
    loop = replace(tracking, model_name="holdout-cache")
    config = TrainConfig(pseudonymized_csv, shards=SHARDS)
    return loop, config, train(loop, config).run_id


def spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many shards' predictions each training took from the cache."""
    taken: list[int] = []
    original: Callable[..., Any] = ensemble.cached_holdout_probas

    def wrapper(*args: Any) -> Any:
        cached = original(*args)
        taken.append(len(cached))
        return cached

    monkeypatch.setattr(training, "cached_holdout_probas", wrapper)
    return taken


def retrained(loop: Tracking, config: TrainConfig, dataset: Path, run_id: str,
              monkeypatch: pytest.MonkeyPatch, *, cache: bool) -> TrainResult:
    with monkeypatch.context() as patch:
        if not cache:
            patch.setattr(training, "cached_holdout_probas", lambda *args: {})
        return train(loop, replace(config, dataset=dataset), "erasure", reuse_from=run_id)


def same_metrics(cached: TrainResult, scored: TrainResult) -> None:
    assert cached.metrics.keys() == scored.metrics.keys()
    for name, value in scored.metrics.items():
        assert cached.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_reused_shards_holdout_predictions_come_from_the_reused_run(
        first: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, run_id = first
    smaller = without(pseudonymized_frame, False, tmp_path / "without.csv")
    taken = spy(monkeypatch)
    cached = retrained(loop, config, smaller, run_id, monkeypatch, cache=True)
    assert len(cached.reused_shards) == SHARDS - 1
    assert taken == [SHARDS - 1]
    scored = retrained(loop, config, smaller, run_id, monkeypatch, cache=False)
    same_metrics(cached, scored)
    assert load_holdout(cached.run_id).equals(load_holdout(scored.run_id))
    # Its own record serves the next reuse: the fitted shard included, on the same holdout.
    again = retrained(loop, config, smaller, cached.run_id, monkeypatch, cache=True)
    assert taken[-1] == SHARDS
    same_metrics(again, scored)


def test_a_changed_holdout_scores_every_shard(
        first: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, run_id = first
    smaller = without(pseudonymized_frame, True, tmp_path / "without-held.csv")
    taken = spy(monkeypatch)
    cached = retrained(loop, config, smaller, run_id, monkeypatch, cache=True)
    assert cached.reused_shards == tuple(range(SHARDS))
    assert taken == [0]
    same_metrics(cached, retrained(loop, config, smaller, run_id, monkeypatch, cache=False))


def test_other_shard_bytes_score_the_shard(
        first: tuple[Tracking, TrainConfig, str], pseudonymized_frame: pd.DataFrame,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop, config, run_id = first
    smaller = without(pseudonymized_frame, False, tmp_path / "without.csv")
    taken = spy(monkeypatch)
    monkeypatch.setattr(ensemble, "_file_digest", lambda path: "0" * 64)
    retrained(loop, config, smaller, run_id, monkeypatch, cache=True)
    assert taken == [0], "the reused shards' files do not have the recorded digests"
