"""The test gate's individual checks. Each answers a Check: passed, and why."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from agogosml.modelloop.canned import CannedExample
from agogosml.modelloop.dataset import FeatureSchema

NUMERIC_TYPES = frozenset({"integer", "long", "float", "double"})
ALLOWED_TYPES = {
    "numeric": NUMERIC_TYPES,
    "boolean": frozenset({"boolean"}),
    # A categorical feature may be forced from integer codes or booleans.
    "categorical": frozenset({"string", "boolean"}) | NUMERIC_TYPES,
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


def signature_matches(input_types: dict[str, str] | None, fitted_names: Iterable[str] | None,
                      schema: FeatureSchema) -> Check:
    """The logged signature names the schema's features, in order, with fitting types,
    and the fitted pipeline was trained on exactly those columns."""
    name = "signature"
    if not input_types:
        return Check(name, False, "the model has no named input signature")
    features = list(schema.features)
    if list(input_types) != features:
        return Check(name, False, f"signature inputs {list(input_types)} are not the "
                                  f"features {features}")
    if fitted_names is not None and list(fitted_names) != features:
        return Check(name, False, f"the pipeline was fitted on {list(fitted_names)}, "
                                  f"not on {features}")
    kinds = {feature: kind for kind in ALLOWED_TYPES
             for feature in getattr(schema, kind)}
    wrong = [f"{feature}: {input_types[feature]} for a {kinds[feature]} feature"
             for feature in features if input_types[feature] not in ALLOWED_TYPES[kinds[feature]]]
    if wrong:
        return Check(name, False, "signature types do not fit: " + "; ".join(wrong))
    return Check(name, True, f"{len(features)} inputs match the feature schema")


def no_personal_features(input_names: Iterable[str], personal_fields: Iterable[str]) -> Check:
    found = sorted(set(input_names) & set(personal_fields))
    if found:
        return Check("no_personal_features", False,
                     f"personal fields are model inputs: {', '.join(found)}")
    return Check("no_personal_features", True, "no personal field is a model input")


def probabilities_valid(output: Any, rows: int) -> Check:
    name = "probabilities"
    array = np.asarray(output, dtype=float)
    if array.shape != (rows, 2):
        return Check(name, False, f"output shape {array.shape}, expected ({rows}, 2)")
    if not np.isfinite(array).all():
        return Check(name, False, f"{int((~np.isfinite(array)).sum())} NaN or infinite scores")
    outside = int(((array < 0.0) | (array > 1.0)).sum())
    if outside:
        return Check(name, False, f"{outside} scores outside [0, 1]")
    if not np.allclose(array.sum(axis=1), 1.0, atol=1e-6):
        return Check(name, False, "class probabilities do not sum to 1")
    return Check(name, True, f"{rows} holdout rows scored with valid probabilities")


def canned_examples_pass(model: Any, examples: tuple[CannedExample, ...],
                         features: tuple[str, ...]) -> Check:
    name = "canned_examples"
    if not examples:
        return Check(name, True, "no canned examples configured")
    frame = pd.DataFrame.from_records([example.record for example in examples])
    missing = [feature for feature in features if feature not in frame.columns]
    if missing:
        return Check(name, False, f"canned examples lack features: {', '.join(missing)}")
    try:
        probabilities = np.asarray(model.predict(frame[list(features)]), dtype=float)
    except (MlflowException, ValueError, TypeError) as error:
        return Check(name, False, f"the model cannot score the canned examples: "
                                  f"{str(error).splitlines()[0][:300]}")
    wrong = [f"{example.name}: P(1)={row[1]:.3f}, expected class {example.expected}"
             for example, row in zip(examples, probabilities, strict=True)
             if int(row.argmax()) != example.expected]
    if wrong:
        return Check(name, False, "; ".join(wrong))
    return Check(name, True, f"{len(examples)} canned examples classified as expected")


def batch_latency_within(model: Any, features: pd.DataFrame, rows: int,
                         limit_s: float) -> Check:
    """Best of three timings, so one scheduler hiccup does not fail a good model."""
    batch = features.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        model.predict(batch)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    verdict = "within" if best <= limit_s else "above"
    return Check("batch_latency", best <= limit_s,
                 f"{rows} rows scored in {best:.3f}s, {verdict} the limit of {limit_s}s")


def minimum_roc_auc(candidate: dict[str, float], floor: float) -> Check:
    roc_auc = candidate["roc_auc"]
    if roc_auc < floor:
        return Check("minimum_roc_auc", False, f"holdout ROC AUC {roc_auc:.4f} below {floor}")
    return Check("minimum_roc_auc", True, f"holdout ROC AUC {roc_auc:.4f} at least {floor}")


def not_worse_than_champion(candidate: dict[str, float], champion: dict[str, float] | None,
                            champion_version: str | None, max_drops: dict[str, float]) -> Check:
    """Each metric in max_drops may fall at most that much below the champion's on the same
    holdout (log loss is turned around: it may rise at most that much)."""
    name = "versus_champion"
    if champion is None:
        return Check(name, True, "no champion to compare with")
    problems = []
    for metric, drop in max_drops.items():
        worse_by = candidate[metric] - champion[metric] if metric == "log_loss" \
            else champion[metric] - candidate[metric]
        if worse_by > drop:
            problems.append(f"{metric} {candidate[metric]:.4f} vs champion's "
                            f"{champion[metric]:.4f} (worse by {worse_by:.4f}, limit {drop})")
    if problems:
        return Check(name, False, f"worse than champion v{champion_version}: "
                                  + "; ".join(problems))
    compared = ", ".join(f"{metric} {candidate[metric]:.4f} vs {champion[metric]:.4f}"
                         for metric in max_drops)
    return Check(name, True, f"not worse than champion v{champion_version}: {compared}")
